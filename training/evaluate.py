"""Evaluate a model artifact on a labelled file, through the production scorer.

    python -m training.evaluate --model ARTIFACT --data FILE [--format ...] [--split test]

``--split`` re-derives one split of the training data from the artifact's recorded seed (and
checks its fingerprint when the file is the training file); without it the whole file is used.
The metrics are printed as one JSON object on the last line of stdout and saved under
``ARTIFACT/evaluations/`` (the model and its metadata are never modified).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from sentiment_core.artifact import ArtifactError, load_metadata
from sentiment_core.labelled import FORMATS, ReadStats, data_file, parse_label_map, read_labelled
from sentiment_core.metrics import binary_metrics

log = logging.getLogger("training.evaluate")


def load_examples(args, meta) -> tuple[list[str], np.ndarray, dict]:
    label_map = parse_label_map(args.label_map)
    if args.split == "all":
        texts, labels, read = [], [], {}
        for path in args.data:
            stats = ReadStats()
            for c in read_labelled(path, args.format, stats, text_col=args.text_col,
                                   label_col=args.label_col, id_col=args.id_col, label_map=label_map):
                texts += c.texts
                labels += c.labels
            read[path] = stats.as_dict()
        return texts, np.array(labels, dtype=np.float32), {"read": read[args.data[0]] if len(read) == 1 else read}
    from training.data import Source, prepare, read_split

    split_cfg = meta.get("split", {})
    with tempfile.TemporaryDirectory() as tmp:
        summary = prepare([Source(p, args.format, args.text_col, args.label_col, args.id_col, label_map)
                           for p in args.data],
                          Path(tmp) / "data", int(split_cfg.get("seed", 42)), split_cfg.get("max_rows"))
        _, texts, labels = read_split(Path(tmp) / "data", args.split)
    got = summary["splits"][args.split]["fingerprint"]
    want = meta.get("data_fingerprint", {}).get(args.split)
    return texts, labels, {"split": args.split, "fingerprint": got, "matches_training_split": got == want,
                           "read": {"rows": summary["rows_read"], "kept": summary["kept"], "dropped": summary["dropped"]}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model artifact directory")
    p.add_argument("--data", required=True, action="append",
                   help="labelled file; repeat for several (with --split: the files the model was trained on)")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--text-col", default="text")
    p.add_argument("--label-col", default="label")
    p.add_argument("--id-col", default=None)
    p.add_argument("--label-map", default=None, help="table format: e.g. 0=negative,1=neutral,2=positive")
    p.add_argument("--split", default="all", choices=("all", "train", "validation", "test"),
                   help="evaluate one split of the artifact's training split of this file")
    p.add_argument("--threshold", type=float, default=None, help="override the artifact's threshold")
    p.add_argument("--batch-size", type=int, default=None, help="default: the backend's (sentiment_core.scorer)")
    p.add_argument("--backend", default="auto", help="auto|tf|onnx|onnx-int8|onnx-fp16 (see sentiment_core.scorer)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.threshold is not None and not 0 < args.threshold < 1:
            raise ValueError(f"--threshold {args.threshold} must be in (0, 1)")
        meta = load_metadata(args.model)
        for path in args.data:
            data_file(path)
        texts, y, info = load_examples(args, meta)
        if not len(texts):
            raise ValueError(f"{', '.join(args.data)}: no labelled positive/negative rows to evaluate")
        from sentiment_core.scorer import Scorer

        scorer = Scorer(args.model, batch_size=args.batch_size, backend=args.backend)
        probs = scorer.predict_proba(texts)[:, meta["labels"].index(meta["positive_label"])]
    except (ValueError, FileNotFoundError, ArtifactError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threshold = meta["threshold"] if args.threshold is None else args.threshold
    metrics = binary_metrics(y, probs, threshold)
    data = [os.path.abspath(p) for p in args.data]
    metrics.update(model_version=meta["model_version"], backend=scorer.backend,
                   data=data[0] if len(data) == 1 else data, **info)
    out_dir = Path(args.model) / "evaluations"
    try:
        out_dir.mkdir(exist_ok=True)
        name = hashlib.sha1(f"{metrics['data']}|{args.split}|{threshold}|{scorer.backend}".encode()).hexdigest()[:10]
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (out_dir / f"{Path(args.data[0]).stem}-{args.split}-{name}.json").write_text(
            json.dumps({**metrics, "evaluated_at": stamp}, indent=2))
    except OSError as e:  # a read-only artifact location is fine: the metrics are printed anyway
        log.warning("could not save the evaluation beside the artifact: %s", e)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
