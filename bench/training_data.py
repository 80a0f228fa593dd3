"""Training data at the full Sentiment140 size: time and peak memory of the data preparation
(read, clean, de-duplicate, split into Parquet shards) and of the batch stream after it.

    python -m bench.training_data [--data FILE] [--copies 36] [--batches 2000]

The published file has 1.6M rows (238 MB), which no one may redistribute and this machine does not
hold. The bench builds a file of that size in the published layout from a real one (default: the
shared 44,694-row Sentiment140 file, or the bundled sample), repeated ``--copies`` times under new
ids so that nothing is dropped as a duplicate, then runs ``training.data.prepare`` and the first
``--batches`` batches of ``TrainBatches`` in this process and prints seconds and peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "sentiment140" / "training.44k.csv"
SAMPLE = ROOT / "tests" / "fixtures" / "sentiment140_300.csv"


def build(src: Path, copies: int, out: Path) -> int:
    """``src``'s lines ``copies`` times, each copy's ids moved by 10^10 (the published ids are < 2^31)."""
    lines = src.read_bytes().splitlines()
    n = 0
    with open(out, "wb") as f:
        for k in range(copies):
            for line in lines:
                target, ids, rest = line.split(b'","', 2)
                f.write(b'","'.join((target, str(int(ids) + k * 10**10).encode(), rest)) + b"\n")
                n += 1
    return n


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else SAMPLE)
    p.add_argument("--copies", type=int, default=36)
    p.add_argument("--batches", type=int, default=2000)
    args = p.parse_args(argv)

    from sentiment_core.tokenization import TextEncoder
    from training.data import Source, TrainBatches, prepare
    from training.model import resolve_base_model

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "sentiment140.csv"
        rows = build(args.data, args.copies, big)
        print(f"input: {rows:,} rows, {big.stat().st_size / 1e6:.0f} MB ({args.copies} x {args.data.name})")
        t = time.perf_counter()
        summary = prepare([Source(str(big))], Path(tmp) / "data", seed=42)
        splits = {k: v["rows"] for k, v in summary["splits"].items()}
        print(f"prepare: {time.perf_counter() - t:.1f} s, {summary['rows_read']:,} read, {summary['kept']:,} kept, "
              f"splits {splits}, dropped {summary['dropped']}; peak RSS {peak_mb()} MB")
        encoder = TextEncoder(Path(resolve_base_model(None)) / "tokenizer.json", 64)
        batches = TrainBatches(Path(tmp) / "data", encoder, "tweet-v1", 32, 42, None)
        t = time.perf_counter()
        n = 0
        for _ in batches.epoch(0, 0):
            n += 1
            if n >= args.batches:
                break
        took = time.perf_counter() - t
        print(f"batch stream: {n} batches of 32 in {took:.1f} s ({n * 32 / took:,.0f} examples/s, against ~35 the CPU "
              f"train step takes); {batches.steps_per_epoch():,} steps per epoch; peak RSS {peak_mb()} MB")


if __name__ == "__main__":
    main()
