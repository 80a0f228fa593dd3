"""What a night of the nightly job costs the driver as the archive's history grows.

    python -m bench.nightly_history --model ARTIFACT [--days 7 28 112] [--workdir DIR] [--runs 3]

For each history length it builds an Internet Archive grab layout of that many days (1,440 minute
files a day, empty: nothing here reads their contents), records every file as scored in a
manifest of the one-file layout the job wrote before it kept one shard per day (the job splits it
on its first run), and times no-op nights (``jobs.nightly`` for the last day, everything scored
already: listing, manifest, plan and commit, no Spark). The first run, which splits the manifest,
is printed apart; then the median of ``--runs``. The same script runs on a commit before the
shards, so the two can be compared on one machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINUTES = 1440


def build(root: Path, days: int) -> str:
    """The grab's ``YYYY/MM/DD/HH/MM.json.bz2`` for ``days`` days from 2021-01-01; the last day."""
    first = dt.date(2021, 1, 1)
    for i in range(days):
        day = first + dt.timedelta(days=i)
        for h in range(24):
            d = root / f"{day:%Y/%m/%d}" / f"{h:02d}"
            d.mkdir(parents=True)
            for m in range(60):
                (d / f"{m:02d}.json.bz2").touch()
    return str(first + dt.timedelta(days=days - 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.nightly_history", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a model artifact (a no-op night reads only its metadata)")
    p.add_argument("--days", type=int, nargs="+", default=[7, 28, 112])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=ROOT / "out" / "nightly_history")
    args = p.parse_args(argv)
    from jobs import nightly as N

    from sentiment_core.artifact import load_metadata

    version = load_metadata(args.model)["model_version"]
    rows = []
    for days in args.days:
        shutil.rmtree(args.workdir, ignore_errors=True)
        archive, out = args.workdir / "archive", args.workdir / "out"
        t = time.perf_counter()
        last = build(archive, days)
        files = N.discover(str(archive), "grab", None, None)
        manifest = {"model_version": version, "files": {
            rel: {"size": e["size"], "mtime": e["mtime"], "run_id": "bench", "dts": [e["date"]]} for rel, e in files.items()}}
        (out / "_manifest").mkdir(parents=True)
        (out / "_manifest" / f"{version}.json").write_text(json.dumps(manifest, indent=1))
        (out / "_tweet_sentiment.json").write_text(json.dumps({"written_by": "tweet-sentiment jobs.nightly", "layout": 1}))
        build_s = time.perf_counter() - t
        argv_night = ["--archive-root", str(archive), "--model", args.model, "--output", str(out), "--date", last]
        times = []
        for _ in range(args.runs + 1):
            t = time.perf_counter()
            s = N.run(N.parse_args(argv_night))
            times.append(time.perf_counter() - t)
            assert s["noop"], s
        rows.append((days, len(files), build_s, times[0], statistics.median(times[1:])))
        print(f"{days} days, {len(files):,} files (built in {build_s:.0f}s): first night {times[0]:.3f}s, "
              f"then {', '.join(f'{x:.3f}' for x in times[1:])}s", flush=True)
    shutil.rmtree(args.workdir, ignore_errors=True)
    base = rows[0][4]
    print("\n| history | files | first no-op night (s) | no-op night, median (s) | vs the shortest history |")
    print("|---|---|---|---|---|")
    for days, n, _, first, med in rows:
        print(f"| {days} days | {n:,} | {first:.3f} | {med:.3f} | {med / base:.2f}x |")
    print(json.dumps({"rows": [dict(zip(("days", "files", "build_s", "first_s", "median_s"), r)) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
