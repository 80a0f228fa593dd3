"""Reading a CSV tweet table: the job's reader (Python tasks) against Spark's own CSV source.

    python -m bench.csv_tables [--copies 3] [--runs 4] [--master local[2]]

Writes the Sentiment140 sample as a table of the ``twarc2 csv`` kind (a header; id, created_at,
text, author.username, lang; texts quoted where they hold commas or quotes), ``--copies`` times
over with distinct ids, then times in one session, alternating, two ways to get the same record
rows out of it, each to the end of an aggregation over every record:

- ``read_records`` as the job reads tables: one Python task per table (``read_csv_units``);
- Spark's CSV source as the job read tables until 2026-11-30: all-string schema with one extra
  column, ``multiLine`` (quoted newlines), ``escape='"'``, then the same ``map_table``.

Both give the same tweets (checked). Prints each time, the medians (the first run of each left
out as warm-up) and their ratio.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.split_read import S140, S140_FALLBACK


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.csv_tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--master", default="local[2]")
    args = p.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from sentiment_core import sentiment140 as s140
    from sentiment_core.spark import RECORD_COLUMNS, get_session, map_table, read_records, table_names

    source = S140 if S140.exists() else S140_FALLBACK
    rows = []
    with open(source, "rb") as f:
        for raw in f:
            fields = s140.split_line(s140.decode(raw)[0])
            if fields is not None:
                rows.append(fields)
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["id", "created_at", "text", "author.username", "lang"]
    writer.writerow(header)
    for copy in range(args.copies):
        for f in rows:
            writer.writerow([f"{copy}{f[s140.IDS]}", "2009-04-06T22:19:45.000Z", f[s140.TEXT], f[4], "en"])
    work = Path(tempfile.mkdtemp(prefix="csv_tables_"))
    table = work / "tweets.csv"
    table.write_text(buf.getvalue(), encoding="utf-8")
    print(f"{args.copies * len(rows)} rows, {table.stat().st_size / 1e6:.1f} MB, from {source}")

    spark = get_session("bench-csv-tables", conf={"spark.master": args.master})

    def spark_csv():
        names = table_names(",".join(header), ",")
        df = (spark.read.schema(", ".join(f"`{n}` string" for n in names))
              .option("header", True).option("multiLine", True).option("escape", '"')
              .option("mode", "PERMISSIVE").option("encoding", "UTF-8").csv(str(table)))
        return map_table(df, {}, "csv").select(*RECORD_COLUMNS)

    ways = {"read_records (Python tasks)": lambda: read_records(spark, [str(table)]), "Spark CSV source": spark_csv}
    tweets = {name: sorted(tuple(r) for r in way().where("kind = 'tweet'").select("tweet_id", "text").collect())
              for name, way in ways.items()}
    assert len({tuple(t) for t in tweets.values()}) == 1, "the two readers disagree"
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for _ in range(args.runs):
            for name, way in ways.items():
                t = time.perf_counter()
                way().agg(F.count(F.lit(1)), F.sum(F.length("text"))).collect()
                times[name].append(time.perf_counter() - t)
                print(f"  {name:<28} {times[name][-1]:.2f} s", flush=True)
    finally:
        spark.stop()
    med = {name: statistics.median(t[1:] or t) for name, t in times.items()}
    for name, m in med.items():
        print(f"{name:<28} median {m:.2f} s")
    print(f"ratio: Spark CSV / read_records = {med['Spark CSV source'] / med['read_records (Python tasks)']:.2f}x")
    table.unlink()
    work.rmdir()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    sys.exit(main())
