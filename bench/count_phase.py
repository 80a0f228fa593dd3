"""The scoring jobs' count phase against the number of input files, and the one-job form it replaced.

    python -m bench.count_phase [--files 10000 40000] [--records-per-file 4] [--runs 2]

Synthetic records (cached, so only the counting is timed): ``--records-per-file`` per file, one in
ten a delete notice. For each file count it prints the median wall time of the jobs' count phase
as the jobs run it (``count_records``, with the files' sets up to ``FILE_SETS_UP_TO`` files, else
``count_files`` as a job of its own) and, in the same session, of the one aggregate with the sets
at any size (counts, distinct tweet ids and the set of files per group), which Spark plans per
group and tweet id.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.count_phase", description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, nargs="+", default=[10000, 40000])
    p.add_argument("--records-per-file", type=int, default=4)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args(argv)
    from pyspark.sql import functions as F

    from jobs.score import count_records, files_with_records
    from sentiment_core.spark import get_session, input_file

    spark = get_session("bench-count-phase", {"spark.master": "local[2]"})

    def one_job(records):  # the form before: one aggregate, a set of files per group
        return (records.groupBy("kind", "reason", F.lit(True).alias("lang_ok"))
                .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("tweet_id").alias("ids"),
                     F.collect_set(input_file()).alias("files")).collect())

    def measure(n: int) -> dict:
        records = spark.range(n * args.records_per_file).select(
            F.when(F.col("id") % 10 == 0, F.lit("delete")).otherwise(F.lit("tweet")).alias("kind"),
            F.col("id").cast("string").alias("tweet_id"), F.lit(None).cast("string").alias("reason"),
            F.lit("en").alias("lang"),
            F.concat(F.lit("/archive/2021/01/01/"), (F.col("id") % n).cast("string"), F.lit(".json.bz2")).alias("source_file"),
        ).cache()
        records.count()
        times = {"now": [], "one_job": []}
        for _ in range(args.runs):
            t = time.perf_counter()
            counted = count_records(records, (), files=n)  # as the jobs run it: the sets up to FILE_SETS_UP_TO files
            files = files_with_records(records, counted)
            times["now"].append(time.perf_counter() - t)
            assert files == n and counted["records_read"] == n * args.records_per_file
            t = time.perf_counter()
            one_job(records)
            times["one_job"].append(time.perf_counter() - t)
        records.unpersist()
        return {"files": n, "records": n * args.records_per_file,
                **{k: round(statistics.median(v), 2) for k, v in times.items()}}

    measure(100)  # the session's first jobs compile Spark's code: not timed
    rows = []
    for n in args.files:
        rows.append(row := measure(n))
        print(f"{n:,} files: count phase {row['now']} s, the one-job form {row['one_job']} s", flush=True)
    spark.stop()
    print("\n| files | records | count phase (s) | one job with the file sets (s) | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['files']:,} | {r['records']:,} | {r['now']} | {r['one_job']} | {r['one_job'] / r['now']:.1f}x |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
