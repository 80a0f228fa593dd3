"""Training throughput: dynamic padding against fixed padding to 64, in the same process.

    python -m bench.training [--rows 640] [--steps 15] [--batch-size 32]

Both variants train the packaged MiniLM from the same starting weights on the same real tweets
(the bundled Sentiment140 sample) with the production batch stream (``training.data.TrainBatches``)
and train step (``training.model.make_train_step``); the only difference is the padding.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=640)
    p.add_argument("--steps", type=int, default=15, help="timed steps per variant (after 2 warm-up steps)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--data", default=str(ROOT / "data" / "sample" / "sentiment140_sample.csv"))
    args = p.parse_args(argv)

    from sentiment_core.tfenv import tf
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import Source, TrainBatches, prepare

    t = tf()
    base = M.resolve_base_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        prepare([Source(args.data)], Path(tmp) / "data", seed=42, max_rows=args.rows)
        M.load_tokenizer(base).save_pretrained(tmp)
        enc = TextEncoder(Path(tmp) / "tokenizer.json", 64)
        results = {}
        model = M.build_classifier(M.load_encoder(base))
        start = [w.numpy() for w in model.weights]
        for name, fixed in (("dynamic", None), ("fixed64", 64)):
            model.set_weights(start)
            opt = M.make_optimizer(5e-5, 1000, 0.06, 0.01, False)
            step = M.make_train_step(model, opt, t.distribute.get_strategy(), False)
            batches = list(TrainBatches(Path(tmp) / "data", enc, "tweet-v1", args.batch_size, 42, fixed).epoch(0))
            for ids, mask, y in batches[:2]:
                step(ids, mask, y)
            timed = [batches[2 + i % (len(batches) - 2)] for i in range(args.steps)]
            t0 = time.perf_counter()
            n = tokens = 0
            for ids, mask, y in timed:
                step(ids, mask, y)[0].numpy()
                n += len(y)
                tokens += ids.size
            dt = time.perf_counter() - t0
            results[name] = {"examples_per_sec": n / dt, "mean_padded_length": tokens / n}
            print(f"{name}: {n / dt:.1f} examples/s, mean padded length {tokens / n:.1f}", flush=True)
    ratio = results["dynamic"]["examples_per_sec"] / results["fixed64"]["examples_per_sec"]
    print(f"dynamic / fixed-64 padding: {ratio:.2f}x")
    print(json.dumps({**results, "speedup": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
