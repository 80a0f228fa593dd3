"""Intermediate-task fine-tuning: a finished training run's encoder written out as a BERT
checkpoint directory, to be the ``--base-model`` of another run (e.g. human-labelled SemEval
first, then the Sentiment140 recipe on top).

    python -m bench.intermediate_encoder --run runs/semeval-soup --out out/semeval-encoder
    python -m training.train --data ../shared/data/sentiment140/training.44k.csv --base-model out/semeval-encoder \
        --output-dir runs/s140-from-semeval --epochs 3

The run's kept weights (``best/``: the epoch, or the mean, its validation loss chose) are loaded
into its classifier; the encoder part is saved with ``save_pretrained`` (config.json,
tf_model.h5) beside the run's tokenizer files. The head is not carried over: the next run starts
its own."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.intermediate_encoder", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, type=Path, help="a finished training.train run directory")
    p.add_argument("--out", required=True, type=Path, help="a new directory for the checkpoint")
    args = p.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"--out {args.out} exists; choose a new directory")

    from training import model as M

    cfg = json.loads((args.run / "run_config.json").read_text())["config"]
    encoder = M.load_encoder(M.resolve_base_model(cfg["base_model"]))
    classifier = M.build_classifier(encoder, cfg["pooling"], cfg["dropout"])
    classifier.load_weights(str(args.run / "best" / "weights")).expect_partial()
    encoder.save_pretrained(str(args.out))
    for f in (args.run / "tokenizer").iterdir():
        shutil.copy2(f, args.out / f.name)
    M.check_bert_checkpoint(str(args.out))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
