"""What ``training.train --average-best`` weighs, on a finished run: its best weights, the weights
of its last checkpoint, and means of the two, each scored on the run's validation and test splits
(threshold tuned on validation, as the export does).

    python -m bench.average_best --run runs/s140-v2 [--last ckpt-2232] [--weights 0.5 0.3 0.7]

Prints one JSON line per candidate. The training keeps the mean at 0.5 where its validation loss
is the lowest; the other weights show how flat that choice is."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.average_best", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a finished training.train run directory")
    p.add_argument("--last", help="checkpoint name in RUN/checkpoints (default: the latest)")
    p.add_argument("--weights", type=float, nargs="*", default=[0.5], help="share of the last checkpoint in a mean")
    args = p.parse_args(argv)

    from sentiment_core.metrics import best_threshold, binary_metrics
    from sentiment_core.tfenv import tf
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import read_split
    from training.export import predict_arrays, probabilities

    run = Path(args.run)
    cfg = json.loads((run / "run_config.json").read_text())["config"]
    t = tf()
    encoder = TextEncoder(run / "tokenizer" / "tokenizer.json", cfg["max_length"])
    model = M.build_classifier(M.load_encoder(M.resolve_base_model(cfg["base_model"])), cfg["pooling"], cfg["dropout"])
    predict = predict_arrays(model)
    last = str(run / "checkpoints" / args.last) if args.last else t.train.latest_checkpoint(str(run / "checkpoints"))

    model.load_weights(str(run / "best" / "weights")).expect_partial()
    best = [v.numpy() for v in model.weights]
    t.train.Checkpoint(model=model).restore(last).expect_partial()
    final = [v.numpy() for v in model.weights]
    _, val_texts, val_y = read_split(run / "data", "validation")
    _, test_texts, test_y = read_split(run / "data", "test")

    def score(name: str, values) -> None:
        for v, w in zip(model.weights, values):
            v.assign(w)
        pv = probabilities(predict, encoder, list(val_texts), cfg["normalization"])
        pt = probabilities(predict, encoder, list(test_texts), cfg["normalization"])
        th = best_threshold(val_y, pv) if cfg.get("tune_threshold", True) else 0.5
        val, test = binary_metrics(val_y, pv, th), binary_metrics(test_y, pt, th)
        print(json.dumps({"weights": name, "threshold": round(float(th), 3),
                          "val_loss": round(val["log_loss"], 4), "val_accuracy": round(val["accuracy"], 4),
                          "test_loss": round(test["log_loss"], 4), "test_accuracy": round(test["accuracy"], 4),
                          "test_roc_auc": round(test["roc_auc"], 4)}), flush=True)

    score("best", best)
    score(f"last ({Path(last).name})", final)
    for share in args.weights:
        score(f"mean, {share} of the last", [(1 - share) * b + share * f for b, f in zip(best, final)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
