"""What a fresh Spark session costs before any of this project's work: the first and the second
run of three trivial jobs, each kind of work the score job's first run does for the first time.

    python -m bench.spark_warmup [--master local[2]]

  sql     a one-row aggregation (Catalyst, code generation, the task path in the JVM)
  python  an identity map over 2 rows in Python workers (the daemon, worker start-up)
  pandas  an identity ``mapInPandas`` over 2 rows (the Arrow path into pandas and back)

The first call of each minus its second is what the score job's first (cold) run pays on top of
a warm run for that kind of work, whatever the input size: the bench's cold row (bench.scoring)
includes it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spark_warmup", description=__doc__.split("\n\n")[0])
    p.add_argument("--master", default="local[2]")
    args = p.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from sentiment_core.spark import get_session

    t0 = time.perf_counter()
    spark = get_session("bench-warmup", conf={"spark.master": args.master})
    session = time.perf_counter() - t0
    jobs = {
        "sql": lambda: spark.range(1000).selectExpr("sum(id)").collect(),
        "python": lambda: spark.sparkContext.parallelize([1, 2], 2).map(lambda x: x).collect(),
        "pandas": lambda: spark.range(2).repartition(2).mapInPandas(lambda it: it, "id long").collect(),
    }
    res = {"session_seconds": round(session, 2)}
    try:
        for name, job in jobs.items():
            times = []
            for _ in range(2):
                t = time.perf_counter()
                job()
                times.append(time.perf_counter() - t)
            res[name] = {"first": round(times[0], 2), "second": round(times[1], 2)}
            print(f"{name:7s} first {times[0]:6.2f} s   second {times[1]:5.2f} s", flush=True)
    finally:
        spark.stop()
    res["first_use_seconds"] = round(sum(res[n]["first"] - res[n]["second"] for n in jobs), 2)
    print(f"session start {session:.2f} s; first use of the three paths: {res['first_use_seconds']:.2f} s")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
