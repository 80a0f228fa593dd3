"""The nightly job over a generated month: night by night, a no-op re-run, a killed run and its
recovery, and the final table against a clean single run. Prints the wall time of every step.

    python -m bench.nightly_scale --model ARTIFACT [--days 30] [--tweets-per-day 3400] [--workdir DIR]
        [--old-delete-share 0.7 --old-delete-days 365] [--max-purges N]

The archive comes from ``bench.make_archive`` (real tweets from the v1.1 minute file, new
Snowflake ids and times, real mix of languages, retweets, truncated tweets and deletes).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(out: Path):
    import pyarrow.dataset as ds

    t = ds.dataset(str(out / "scores"), format="parquet", partitioning="hive").to_table(
        columns=["tweet_id", "dt", "model_version", "label", "score"]).to_pandas()
    t["dt"] = t["dt"].astype(str)
    return t.sort_values(["model_version", "tweet_id"]).reset_index(drop=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.nightly_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--tweets-per-day", type=int, default=3400)
    p.add_argument("--workdir", type=Path, default=ROOT / "out" / "nightly_scale")
    p.add_argument("--max-purges", type=int, default=None, help="as in jobs.nightly (default: every partition, every night)")
    from bench.make_archive import add_delete_age_args

    add_delete_age_args(p)
    args = p.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from bench.make_archive import generate
    from jobs import nightly as N
    from sentiment_core.spark import get_session

    shutil.rmtree(args.workdir, ignore_errors=True)
    archive, out, clean = args.workdir / "archive", args.workdir / "out", args.workdir / "clean"
    t0 = time.perf_counter()
    counts = generate(archive, days=args.days, tweets_per_day=args.tweets_per_day, start="2021-01-01", seed=0,
                      old_delete_share=args.old_delete_share, old_delete_days=args.old_delete_days)
    print(f"generated {counts['tweets']} tweets, {counts['deletes']} deletes in {counts['files']} files "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    days = [str(dt.date(2021, 1, 1) + dt.timedelta(days=i)) for i in range(args.days)]
    spark = get_session("nightly-scale", conf={"spark.master": "local[2]"})
    rows = []

    def night(day, target=out):
        limit = [] if args.max_purges is None else ["--max-purges", str(args.max_purges)]
        s = N.run(N.parse_args(["--archive-root", str(archive), "--model", args.model, "--output", str(target),
                                "--date", day, *limit]), spark=spark)
        rows.append((day, s["files_new"], s["scored"], s["rows_deleted"], s["wall_seconds"], s["noop"]))
        print(f"night {day}: files {s['files_new']}, scored {s['scored']}, deleted {s['rows_deleted']}, partitions "
              f"written {len(s['partitions_written'])} ({len(s.get('partitions_purged', []))} earlier ones purged, "
              f"{s.get('partitions_waiting_for_deletes', 0)} waiting), {s['wall_seconds']:.1f}s"
              f"{' (no-op)' if s['noop'] else ''}", flush=True)
        return s

    for day in days[:-1]:
        night(day)
    noop = night(days[-2])
    env = {**os.environ, "TWEET_SENTIMENT_FAULT": "mid_commit", "PYTHONPATH": str(ROOT)}
    t1 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "jobs.nightly", "--archive-root", str(archive), "--model", args.model,
                          "--output", str(out), "--date", days[-1]], cwd=ROOT, env=env, capture_output=True, text=True)
    killed_s = time.perf_counter() - t1
    print(f"night {days[-1]} killed mid-commit (SIGKILL, exit {res.returncode}) after {killed_s:.1f}s", flush=True)
    rec = night(days[-1])
    print(f"recovery run: rolled forward {rec['recovered_runs'] or '-'}; noop {rec['noop']}", flush=True)
    t2 = time.perf_counter()
    s = N.run(N.parse_args(["--archive-root", str(archive), "--model", args.model, "--output", str(clean)]), spark=spark)
    clean_s = time.perf_counter() - t2
    spark.stop()
    a, b = table(out), table(clean)
    same = (list(a["tweet_id"]) == list(b["tweet_id"]) and (a["label"] == b["label"]).all()
            and float((a["score"] - b["score"]).abs().max()) <= 1e-5 and (a["dt"] == b["dt"]).all())
    dups = int(a.duplicated(["model_version", "dt", "tweet_id"]).sum())
    first, last = rows[: len(rows) // 3], rows[2 * len(rows) // 3: -2]
    mean = lambda rs: sum(r[4] for r in rs if not r[5]) / max(1, sum(1 for r in rs if not r[5]))  # noqa: E731
    report = {"tweets": counts["tweets"], "days": args.days, "rows_in_table": len(a), "clean_rows": len(b),
              "identical_to_clean_run": bool(same), "duplicates": dups, "noop_rerun_seconds": noop["wall_seconds"],
              "killed_run_seconds": round(killed_s, 1), "recovery_seconds": rec["wall_seconds"],
              "clean_single_run_seconds": round(clean_s, 1), "mean_night_first_third": round(mean(first), 1),
              "mean_night_last_third": round(mean(last), 1), "clean_scored": s["scored"]}
    print(json.dumps(report))
    # with --max-purges the last nights may leave partitions whose deleted tweets are still there
    waiting = rec.get("partitions_waiting_for_deletes", 0)
    print(json.dumps({"partitions_waiting_for_deletes_at_the_end": waiting}))
    return 0 if (same or waiting) and not dups else 1


if __name__ == "__main__":
    sys.exit(main())
