"""Parsing one large plain or bzip2 file: by one task, or by byte ranges in parallel (read_records).

    python -m bench.split_read [--copies 8] [--runs 3] [--master local[2]]

Writes the real v1.1 minute file decompressed (JSON Lines) and the Sentiment140 sample, each
repeated ``--copies`` times into one plain file, and the same JSON Lines as one bzip2 file (as
the grab compresses its minutes, 900 kB blocks), then times in one session, alternating, the
parse of each file by ``read_records`` with byte ranges (the default: Spark's file-split rule,
``spark.sql.files.*``) and whole, in one task (``spark.tweet_sentiment.splitFiles=false``). A
parse is timed to the end of an aggregation over every record; with ranges it includes the
job that counts their newlines (not for bzip2, whose ranges are unnumbered). Prints each time,
the medians and their ratio.
"""
from __future__ import annotations

import argparse
import bz2
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.scoring import DEFAULT_INPUT

S140 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment140" / "training.44k.csv"
S140_FALLBACK = Path(__file__).resolve().parents[1] / "data" / "sample" / "sentiment140_sample.csv"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.split_read", description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    args = p.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from sentiment_core.spark import SPLIT_FILES_CONF, get_session, plan_parse, read_records

    tmp = Path(tempfile.mkdtemp(prefix="split-read-"))
    v1 = Path(DEFAULT_INPUT)
    sources = {"v1.1 JSON": bz2.decompress(v1.read_bytes()) if v1.exists() else None,
               "Sentiment140 CSV": (S140 if S140.exists() else S140_FALLBACK).read_bytes()}
    files = {}
    for name, data in sources.items():
        if data is None:
            continue
        path = tmp / (name.split()[0].lower() + (".jsonl" if "JSON" in name else ".csv"))
        path.write_bytes(data * args.copies)
        files[name] = str(path)
        if "JSON" in name:
            packed = tmp / "v1.jsonl.bz2"
            packed.write_bytes(bz2.compress(data * args.copies, 9))
            files["v1.1 JSON, bzip2"] = str(packed)

    spark = get_session("bench-split-read", conf={"spark.master": args.master})
    results = {}
    try:
        for name, path in files.items():
            _, stats = plan_parse(spark, [path], "auto", 4)
            times = {True: [], False: []}
            for run in range(args.runs + 1):  # run 0 warms the workers and is not counted
                for split in (True, False):
                    spark.conf.set(SPLIT_FILES_CONF, str(split).lower())
                    t = time.perf_counter()
                    row = read_records(spark, [path]).agg(F.count(F.lit(1)), F.sum(F.length("text"))).first()
                    seconds = time.perf_counter() - t
                    if run:
                        times[split].append(seconds)
            spark.conf.unset(SPLIT_FILES_CONF)
            split_s, whole_s = statistics.median(times[True]), statistics.median(times[False])
            mb = os.path.getsize(path) / 1e6
            results[name] = {"mb": round(mb, 1), "records": row[0], **stats, "ranges_seconds": times[True],
                             "whole_seconds": times[False], "speedup": round(whole_s / split_s, 2)}
            print(f"{name}: {mb:.0f} MB, {row[0]} records, {stats['ranges']} ranges of "
                  f"{stats['range_bytes'] / 1e6:.1f} MB on {spark.sparkContext.defaultParallelism} slots")
            print(f"  byte ranges {' '.join(f'{s:.2f}' for s in times[True])} s, median {split_s:.2f} s "
                  f"({mb / split_s:.1f} MB/s)")
            print(f"  one task    {' '.join(f'{s:.2f}' for s in times[False])} s, median {whole_s:.2f} s "
                  f"({mb / whole_s:.1f} MB/s)")
            print(f"  ranges vs one task: {whole_s / split_s:.2f}x", flush=True)
    finally:
        spark.stop()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
