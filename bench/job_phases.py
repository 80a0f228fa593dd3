"""Where a score job's time goes: its phases on the driver and the Spark jobs and stages they run.

    python -m bench.job_phases --model ARTIFACT [--input PATH] [--runs 3] [--master local[2]] [--conf KEY=VALUE]
                               [--alternate KEY=A,B]

Runs the score job ``--runs`` times in one session (the first is cold, the rest warm) and prints,
per run: the wall time of each driver phase of ``jobs.score.run`` (read, count, side tables,
planning of the scoring job) as it returns, then every Spark job and stage of that run from the
application's REST API (submission and completion times, tasks, summed task run time). The time a
run spends outside its Spark jobs is driver work: planning, commits, Python.

``--alternate KEY=A,B`` sets a runtime setting (a SQL conf, such as
``spark.tweet_sentiment.splitFiles``) to A, B, A, B, ... run by run in the one session, and ends
with the median wall time of the warm runs of each value: an A/B comparison without the noise of
two sessions started at different times.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.scoring import DEFAULT_INPUT, FALLBACK_INPUT

PHASES = ("count_records", "write_side_table", "prepare_tweets", "score_tweets")


def timed_phases(module, names, log: list) -> None:
    """Wrap ``module.<name>`` so that each call appends (name, seconds, end time) to ``log``."""
    for name in names:
        fn = getattr(module, name)

        @functools.wraps(fn)
        def wrapper(*a, _fn=fn, _name=name, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                log.append((_name, time.perf_counter() - t, time.strftime("%H:%M:%S")))

        setattr(module, name, wrapper)


def _when(stamp: str) -> dt.datetime:
    """A REST API time (``2026-12-01T02:41:59.919GMT``) as an aware datetime."""
    return dt.datetime.strptime(stamp.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def rest(ui: str, app: str, what: str) -> list[dict]:
    with urllib.request.urlopen(f"{ui}/api/v1/applications/{app}/{what}") as r:
        return json.load(r)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.job_phases", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT if DEFAULT_INPUT.exists() else FALLBACK_INPUT)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--backend", default="auto")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    p.add_argument("--alternate", metavar="KEY=A,B", help="a runtime setting alternated run by run")
    args = p.parse_args(argv)
    key, values = (args.alternate.split("=", 1)[0], args.alternate.split("=", 1)[1].split(",")) if args.alternate else (None, [None])
    walls: dict = {v: [] for v in values}

    from jobs import score
    from sentiment_core import spark as S

    log: list = []
    timed_phases(score, PHASES, log)
    timed_phases(S, ("read_records",), log)
    t = time.perf_counter()
    spark = S.get_session("bench-job-phases", conf={"spark.master": args.master, **dict(c.split("=", 1) for c in args.conf)})
    print(f"session start {time.perf_counter() - t:.2f} s", flush=True)
    ui, app = spark.sparkContext.uiWebUrl, spark.sparkContext.applicationId
    out = Path(tempfile.mkdtemp(prefix="job_phases_")) / "out"
    seen_jobs, seen_stages = set(), set()
    try:
        for i in range(args.runs):
            shutil.rmtree(out, ignore_errors=True)
            log.clear()
            value = values[i % len(values)]
            if key is not None:
                spark.conf.set(key, value)
            s = score.run(score.parse_args(["--input", str(args.input), "--model", str(args.model), "--output", str(out),
                                            "--backend", args.backend]), spark=spark)
            if i:
                walls[value].append(s["wall_seconds"])
            print(f"\nrun {i} ({'cold' if i == 0 else 'warm'}{f', {key}={value}' if key else ''}): wall "
                  f"{s['wall_seconds']:.2f} s, scoring job "
                  f"{s['scoring_seconds']:.2f} s, {s['scored']} tweets ({s['model_rows']} model rows), "
                  f"{s['scored'] / s['wall_seconds']:.1f} tweets/s")
            for name, secs, end in log:
                print(f"  phase {name:<18} {secs:6.2f} s  (ended {end})")
            run_jobs = [j for j in rest(ui, app, "jobs") if j["jobId"] not in seen_jobs]
            if run_jobs:  # the driver's own time before the run's first Spark job and after its last
                started = dt.datetime.fromisoformat(s["started_at"])
                first = min(_when(j["submissionTime"]) for j in run_jobs)
                last = max(_when(j["completionTime"]) for j in run_jobs if j.get("completionTime"))
                print(f"  driver before the first job {(first - started).total_seconds():.2f} s, after the last "
                      f"{(started + dt.timedelta(seconds=s['wall_seconds']) - last).total_seconds():.2f} s")
            for j in sorted(run_jobs, key=lambda j: j["jobId"]):
                if j["jobId"] not in seen_jobs:
                    seen_jobs.add(j["jobId"])
                    print(f"  job {j['jobId']:>3} {j['submissionTime'][11:23]} -> {j.get('completionTime', '')[11:23]} "
                          f"stages {j['stageIds']} {j.get('name', '')[:60]}")
            for st in sorted(rest(ui, app, "stages"), key=lambda x: x["stageId"]):
                if st.get("status") == "COMPLETE" and st["stageId"] not in seen_stages:
                    seen_stages.add(st["stageId"])
                    print(f"    stage {st['stageId']:>3} {st.get('submissionTime', '')[11:23]} -> "
                          f"{st.get('completionTime', '')[11:23]} tasks {st['numTasks']} task run time "
                          f"{st['executorRunTime'] / 1000:.2f} s  {st.get('name', '')[:50]}")
                    if st["numTasks"] > 1:  # an uneven stage leaves slots idle until its longest task ends
                        tasks = rest(ui, app, f"stages/{st['stageId']}/{st['attemptId']}/taskList?length=1000")
                        print("      tasks " + " / ".join(f"{t['duration'] / 1000:.2f}" for t in
                                                          sorted(tasks, key=lambda t: t["index"])) + " s")
    finally:
        spark.stop()
        shutil.rmtree(out.parent, ignore_errors=True)
    if key is not None:
        print()
        for value, w in walls.items():
            print(f"{key}={value}: warm runs {len(w)}, median wall {statistics.median(w):.2f} s "
                  f"({', '.join(f'{x:.2f}' for x in w)})" if w else f"{key}={value}: no warm run")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
