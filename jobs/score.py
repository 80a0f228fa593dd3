"""Score tweet tables with a model artifact and write partitioned Parquet.

    spark-submit jobs/score.py --input PATH [PATH ...] --model ARTIFACT --output DIR [options]
    python -m jobs.score ...            (the same, on the embedded default: local Spark)

Output directory (one of this job's, or empty; a local or mounted path, or a URI of the cluster's
Hadoop file systems such as hdfs:// or s3a://)::

    scores/model_version=V/dt=YYYY-MM-DD/   scored tweets; a run replaces the partitions it writes
    rejects/run_id=R/                       bad records: raw (bounded), source_file, line_no, reason
    deletes/run_id=R/                       tweet ids of {"delete": ...} notices seen by the run
    runs/R.json                             the run summary (also the last line of stdout)

Counts reconcile: records read = scored + rejected + delete notices + filtered by language
+ duplicate tweet ids; the job fails if they do not.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sentiment_core.scorer import BACKENDS, resolve_backend
from sentiment_core.storage import is_uri, output_dir

log = logging.getLogger("jobs.score")

MARKER = "_tweet_sentiment.json"
TABLES = ("scores", "rejects", "deletes", "runs")
INPUT_FORMATS = ("auto", "sentiment140", "twitter-v1", "twitter-v2", "json", "parquet", "csv")


@dataclass(frozen=True)
class ScoreConfig:
    inputs: tuple[str, ...] = field(metadata={"help": "input files or directories (searched recursively)"})
    model: str = field(metadata={"help": "model artifact directory"})
    output: str = field(metadata={"help": "output directory"})
    format: str = field(default="auto", metadata={"help": "|".join(INPUT_FORMATS) + " (auto: per file)"})
    lang: tuple[str, ...] = field(default=(), metadata={"help": "keep only tweets in these languages"})
    include_text: bool = field(default=False, metadata={"help": "keep the tweet text in the output"})
    batch_size: int | None = field(default=None, metadata={"help": "model mini-batch rows inside the UDF (None: the backend's default)"})
    backend: str = field(default="auto", metadata={"help": "auto|tf|onnx|onnx-int8|onnx-fp16 (sentiment_core.scorer)"})
    partitions: int = field(default=0, metadata={"help": "scoring tasks (0: from the row count)"})
    files_per_task: int = field(default=4, metadata={"help": "input files parsed per read task"})
    overwrite: bool = field(default=False, metadata={"help": "replace all earlier output (or write into a non-job dir)"})
    # the fields of a table (Parquet, CSV) or of other tools' JSON objects, where not found by name
    # (sentiment_core.schema.TABLE_COLUMNS)
    id_col: str | None = None
    text_col: str | None = None
    time_col: str | None = None
    user_col: str | None = None
    lang_col: str | None = None

    def __post_init__(self):
        if self.format not in INPUT_FORMATS:
            raise ValueError(f"--format must be one of {INPUT_FORMATS}")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {BACKENDS}")
        if (self.batch_size is not None and self.batch_size < 1) or self.partitions < 0 or self.files_per_task < 1:
            raise ValueError("--batch-size and --files-per-task must be >= 1, --partitions >= 0")


def parse_args(argv=None) -> ScoreConfig:
    p = argparse.ArgumentParser(prog="jobs/score.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", dest="inputs", nargs="+", action="extend", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--output", required=True, help="output directory: a path every node sees, or hdfs://, s3a://, ...")
    p.add_argument("--format", default="auto", choices=INPUT_FORMATS)
    p.add_argument("--lang", nargs="+", action="extend", default=[], help="e.g. --lang en")
    p.add_argument("--include-text", action="store_true")
    p.add_argument("--batch-size", type=int, default=None,
                   help="model mini-batch rows (default: 32 on ONNX Runtime, 64 on TensorFlow, 1024 on a GPU)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="model runtime: auto (ONNX Runtime on CPU executors when the artifact has it, its fp16 "
                        "graph on GPU executors when onnxruntime-gpu is installed, else TensorFlow), tf, onnx, "
                        "onnx-int8 (CPU; faster, slightly different scores), onnx-fp16 (GPU)")
    p.add_argument("--partitions", type=int, default=0)
    p.add_argument("--files-per-task", type=int, default=4)
    p.add_argument("--overwrite", action="store_true")
    for c in ("id", "text", "time", "user", "lang"):
        p.add_argument(f"--{c}-col", help=f"table input (Parquet, CSV, other tools' JSON objects): the {c} column or "
                       "field, where not found by name")
    ns = vars(p.parse_args(argv))
    ns["inputs"] = tuple(ns["inputs"])
    ns["lang"] = tuple(ns["lang"])
    return ScoreConfig(**ns)


def check_output(output: str, overwrite: bool, spark=None) -> None:
    """Refuse a non-empty directory that is not an earlier output of this job (unless --overwrite).
    A URI is looked at through ``spark`` (its Hadoop file systems); a local path needs none."""
    root = output_dir(output, spark)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--output {output} is a file, not a directory")
    if root.listdir() and not root.exists(MARKER) and not overwrite:
        raise ValueError(f"--output {output} is not empty and is not an output of this job; "
                         "choose another directory or pass --overwrite")


def validate(cfg: ScoreConfig) -> tuple[dict, list[str]]:
    """Everything a user can fix, checked before any Spark work."""
    from sentiment_core import readers
    from sentiment_core.artifact import load_metadata

    meta = load_metadata(cfg.model)
    if cfg.backend != "auto":
        resolve_backend(meta, cfg.backend)  # an explicit backend the artifact lacks: fail now
    files = readers.list_input_files(list(cfg.inputs))
    if not files:
        raise ValueError(f"no input files under {list(cfg.inputs)}"
                         + (f" (skipped {len(files.skipped)} that hold no tweets by their names)" if files.skipped else ""))
    if files.skipped:
        log.warning("skipped %d file(s) that hold no tweets by their names (archive metadata, READMEs, checksums): %s",
                    len(files.skipped), ", ".join(files.skipped[:10]))
    if not is_uri(cfg.output):  # a URI's file system is reached through the Spark session: checked in run
        check_output(cfg.output, cfg.overwrite)
    return meta, files


def prepare_tweets(records, langs: tuple[str, ...], duplicates: bool = True):
    """Tweets that will be scored: language filter, then one row per tweet_id (the first by
    source file and line, so the choice is deterministic). ``duplicates=False`` (count_records
    found every kept id once) skips the dedup: a window over tweet_id, i.e. a shuffle of every
    tweet with its text, one sort and one more Spark job, for nothing."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    tweets = records.where(F.col("kind") == "tweet")
    if langs:
        tweets = tweets.where(F.col("lang").isin(list(langs)))
    if not duplicates:
        return tweets
    w = Window.partitionBy("tweet_id").orderBy(F.col("source_file"), F.col("line_no").asc_nulls_last())
    return tweets.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn")


def score_tweets(tweets, artifact: str, batch_size: int | None, partitions: int, model_version: str, run_id: str,
                 include_text: bool, backend: str = "auto", observation=None):
    """Canonical tweets -> output rows. Rows are hash-partitioned by text and sorted by text length,
    then text, within each task: mini-batches of similar length pad little, the repeats of a text
    (retweets) meet in one Arrow batch, where the scorer runs the model once per distinct text,
    and the order (so the output) is the same on every run. A text repeated a million times
    makes its task longer by a million rows to move, not a million model rows.

    ``observation`` (a ``pyspark.sql.Observation``) gets, from the job that consumes the rows:
    ``n`` rows, ``dts`` their dates, ``model_rows`` the rows the model ran on (the rest took the
    scores of an equal text)."""
    from pyspark.sql import functions as F

    from sentiment_core.spark import score_udf

    scored = (tweets.repartition(partitions, "text")
              .sortWithinPartitions(F.length("text"), "text", "tweet_id")
              .withColumn("_s", score_udf(artifact, batch_size, backend)(F.col("text"))))
    if observation is not None:
        scored = scored.observe(observation, F.count(F.lit(1)).alias("n"), F.collect_set("dt").alias("dts"),
                                F.coalesce(F.sum(F.col("_s.model_row").cast("long")), F.lit(0)).alias("model_rows"))
    cols = ["tweet_id", "created_at", "user", "lang"] + (["text"] if include_text else []) + [
        "is_retweet", "source_file", F.col("_s.score").alias("score"), F.col("_s.label").alias("label"),
        F.lit(run_id).alias("run_id"), F.current_timestamp().alias("scored_at"),
        F.lit(model_version).alias("model_version"), "dt"]
    return scored.select(*cols)


# input files up to which count_records also collects the files that gave records (one job); above,
# count_files counts them in a job of its own (bench.count_phase: 0.32 s against 0.37 s for one
# file, 66 s against 3.4 s for 160,000)
FILE_SETS_UP_TO = 2_000


def count_records(records, langs: tuple[str, ...], files: int = 0) -> dict:
    """One job over the records: rows by kind, reject reason and --lang match, and the distinct
    ids among the kept tweets (so duplicates = kept - distinct). One distinct aggregate: a second
    made Spark expand every row and cost three more jobs. For at most FILE_SETS_UP_TO input
    ``files`` also ``files_with_records``, from a set of files per group: Spark computes those sets
    per group and tweet id, which grows faster than the input (:func:`count_files` beyond)."""
    from pyspark.sql import functions as F

    from sentiment_core.spark import input_file

    lang_ok = F.coalesce(F.col("lang").isin(list(langs)), F.lit(False)) if langs else F.lit(True)
    with_files = files <= FILE_SETS_UP_TO
    sets = [F.collect_set(input_file()).alias("files")] if with_files else []
    groups = (records.groupBy("kind", "reason", lang_ok.alias("lang_ok"))
              .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("tweet_id").alias("ids"),
                   F.count_if(F.col("lang").isNull()).alias("no_lang"), *sets).collect())

    def total(kind, **where):
        return sum(g["n"] for g in groups if g["kind"] == kind and all(g[k] == v for k, v in where.items()))

    reasons: dict[str, int] = {}
    for g in groups:
        if g["kind"] == "reject":
            reasons[g["reason"]] = reasons.get(g["reason"], 0) + g["n"]
    tweets, filtered = total("tweet"), total("tweet", lang_ok=False)
    distinct = sum(g["ids"] for g in groups if g["kind"] == "tweet" and g["lang_ok"])
    found = {"files_with_records": len(set().union(*(g["files"] for g in groups)))} if with_files else {}
    # --lang on tweets that carry no language (Sentiment140, a table without a lang column) filters them all
    no_lang = sum(g["no_lang"] for g in groups if g["kind"] == "tweet" and not g["lang_ok"]) if langs else 0
    if no_lang:
        log.warning("--lang %s filtered out %d tweet(s) that carry no language (Sentiment140 has none; a table "
                    "names it with --lang-col): drop --lang to score them", ",".join(langs), no_lang)
    return {**found, "records_read": sum(g["n"] for g in groups), "tweets_read": tweets,
            "delete_notices": total("delete"), "rejected": total("reject"), "rejected_by_reason": reasons,
            "filtered_lang": filtered, "filtered_lang_no_language": no_lang,
            "filtered_duplicate": tweets - filtered - distinct, "to_score": distinct}


def count_files(records) -> int:
    """The input files that gave records (an archive's members count for the archive, whose records
    name "<archive>!/<member>"), as a job of its own: count_records' sets of files grow faster
    than the input (bench.count_phase, 160,000 files: 3.4 s for both jobs against 66 s; 525,600
    files: 14 s against more than 15 minutes)."""
    from sentiment_core.spark import input_file

    return records.select(input_file()).distinct().count()


def files_with_records(records, counts: dict) -> int:
    """The input files that gave records: count_records' figure where it took the files' sets,
    else :func:`count_files`' job."""
    return counts["files_with_records"] if "files_with_records" in counts else count_files(records)


def write_side_table(rows, n: int, out, rel: str) -> None:
    """A rejects/deletes partition ``rel`` of the output directory ``out`` (sentiment_core.storage):
    ``rows`` (``n`` of them, counted already) as one Parquet file; with none, an empty Parquet file
    of their schema, written without a Spark job, so the table stays queryable (0 rows)."""
    if n:
        rows.coalesce(1).write.mode("overwrite").parquet(out.spark(rel))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    buf = pa.BufferOutputStream()
    pq.write_table(to_arrow_schema(rows.schema, timezone="UTC").empty_table(), buf)
    out.write_bytes(f"{rel}/part-00000-empty.parquet", buf.getvalue().to_pybytes())


def run(cfg: ScoreConfig, spark=None) -> dict:
    from pyspark import StorageLevel, inheritable_thread_target
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from sentiment_core.spark import get_session, read_records, scoring_partitions

    meta, files = validate(cfg)
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    own_session = spark is None
    spark = spark or get_session("tweet-sentiment-score")
    try:
        if is_uri(cfg.output):  # reached through the session's Hadoop file systems
            check_output(cfg.output, cfg.overwrite, spark)
        out = output_dir(cfg.output, spark)
    except Exception:
        if own_session:
            spark.stop()
        raise
    log.info("run %s: %d input files, model %s, config %s", run_id, len(files), meta["model_version"],
             json.dumps(dataclasses.asdict(cfg)))
    # rejects and deletes are staged under a hidden dir (readers skip '_' names) and moved in only
    # after the scores are written: a failed or killed run adds no rows to any table
    staging = f"_staging/{run_id}"
    side_writer = ThreadPoolExecutor(1, thread_name_prefix="side-tables")
    try:
        if cfg.overwrite:
            for t in TABLES + ("_staging",):
                out.delete(t)
        out.mkdirs()
        out.write_bytes(MARKER, json.dumps({"written_by": "tweet-sentiment jobs.score", "layout": 1}).encode())
        columns = {"id": cfg.id_col, "text": cfg.text_col, "time": cfg.time_col, "user": cfg.user_col, "lang": cfg.lang_col}
        parse_plan: dict = {}
        records = read_records(spark, files, cfg.format, columns, cfg.files_per_task,
                               plan=parse_plan).persist(StorageLevel.MEMORY_AND_DISK)
        counts = count_records(records, cfg.lang, files=len(files))
        log.info("read: %s", counts)
        side = {"rejects": (counts["rejected"], "reject", ["raw", "source_file", "line_no", "reason", "detected_at"]),
                "deletes": (counts["delete_notices"], "delete", ["tweet_id", "user_id", "deleted_at", "source_file"])}
        # the side tables are small: written by a second thread while the scoring job is planned
        # and runs (Spark runs jobs from several threads at once), not as jobs before it. The
        # thread takes this one's Spark local properties (a caller's job group, scheduler pool, job tags)
        def write_side_tables() -> int:
            # for the summary only, where count_records left it: off the scoring job's path
            found = files_with_records(records, counts)
            for table, (n, kind, cols) in side.items():
                write_side_table(records.where(F.col("kind") == kind).select(*cols), n, out, f"{staging}/{table}")
            return found

        side_done = side_writer.submit(inheritable_thread_target(spark)(write_side_tables))
        partitions = cfg.partitions or scoring_partitions(counts["to_score"], spark.sparkContext.defaultParallelism)
        t_score = time.perf_counter()
        # what the write takes in, counted as it goes in the same job (reading the files back cost
        # three more jobs): rows, their dates, the model's rows. One row per id is by construction
        # (the dedup, or the counts finding no repeated id), and the rows must equal the distinct
        # ids counted before scoring
        written = Observation(f"written-{run_id}")
        tweets = prepare_tweets(records, cfg.lang, duplicates=counts["filtered_duplicate"] > 0)
        scored = score_tweets(tweets, meta["path"] if os.path.isdir(cfg.model) else cfg.model, cfg.batch_size,
                              partitions, meta["model_version"], run_id, cfg.include_text, cfg.backend,
                              observation=written)
        # the days this model version has already: a run that writes one of them replaces it whole
        before = {d[len("dt="):] for d in out.listdir(f"scores/model_version={meta['model_version']}") if d.startswith("dt=")}
        # dynamic on the writer itself: a session not made by get_session (run(cfg, spark=...))
        # may be in the default static mode, which would wipe every other partition
        (scored.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
         .partitionBy("model_version", "dt").parquet(out.spark("scores")))
        score_seconds = time.perf_counter() - t_score
        files_found = side_done.result()
        check = written.get
        dts = sorted(str(d) for d in check["dts"])
        replaced = sorted(before.intersection(dts))
        if replaced:
            log.warning("replaced %d day partition(s) that earlier runs wrote (%s): a run's days hold its rows only. "
                        "To add files to days already scored, use jobs.nightly", len(replaced), ", ".join(replaced[:5]))
        for table in side:
            out.rename(f"{staging}/{table}", f"{table}/run_id={run_id}")
        records.unpersist()
    finally:
        side_writer.shutdown(wait=True)  # a failed run: its side tables are written (or failed) before the cleanup
        out.delete(staging)  # emptied by a run that committed; a failed run's rows
        if own_session:
            spark.stop()
    wall = time.perf_counter() - t0
    summary = {
        "run_id": run_id, "job": "score", "model_version": meta["model_version"], "model": meta["path"],
        "inputs": list(cfg.inputs), "files": len(files), "files_skipped": len(files.skipped), **counts, "files_with_records": files_found,
        "scored": int(check["n"]),
        "model_rows": int(check["model_rows"]), "partitions_written": dts, "partitions_replaced": replaced,
        "output": out.root,
        "started_at": started.isoformat(), "wall_seconds": round(wall, 3),
        "scoring_seconds": round(score_seconds, 3),
        "tweets_per_second": round(int(check["n"]) / wall, 2) if wall else None, "parse": parse_plan,
        "config": dataclasses.asdict(cfg),
    }
    accounted = summary["scored"] + summary["rejected"] + summary["delete_notices"] + \
        summary["filtered_lang"] + summary["filtered_duplicate"]
    summary["reconciled"] = accounted == summary["records_read"] and check["n"] == counts["to_score"]
    out.write_bytes(f"runs/{run_id}.json", json.dumps(summary, indent=2).encode())
    if not summary["reconciled"]:
        raise RuntimeError(f"counts do not reconcile: read {summary['records_read']} != scored {summary['scored']} "
                           f"+ rejected + deletes + filtered ({accounted}); rows written {check['n']}, distinct ids to score "
                           f"{counts['to_score']}")
    return summary


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # spark-submit merges the driver's stderr into stdout, and py4j logs at INFO when the gateway
    # closes at exit: keep it quiet so the summary stays the last line of stdout
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        cfg = parse_args(argv)
        summary = run(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("scored %d tweets (%d through the model, the rest repeats of a text) in %.1fs (%.1f tweets/s); "
             "rejected %d, deletes %d, filtered %d+%d", summary["scored"], summary["model_rows"], summary["wall_seconds"],
             summary["tweets_per_second"] or 0, summary["rejected"], summary["delete_notices"],
             summary["filtered_lang"], summary["filtered_duplicate"])
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
