"""The Spark side: the one session factory, the readers as Spark DataFrames, and the scoring UDF.

Transforms here are ``DataFrame -> DataFrame``; only :func:`read_records` touches paths. PySpark is
imported lazily so that the rest of ``sentiment_core`` stays importable without it.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Iterator, Sequence

import pandas as pd

from . import jvmcds, readers, schema

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 2048  # rows per Arrow batch into the scoring UDF (sorted + padded inside it)

# The internal record table: a reader's tweets, rejects and delete notices in one schema,
# told apart by ``kind``. ``line_no`` orders duplicates deterministically: a reject's 1-based line,
# for tweets and delete notices (whose reader records carry no line) the record's 1-based
# position in its file.
RECORD_DDL = (
    "kind string, tweet_id string, created_at timestamp, dt date, user string, lang string, "
    "text string, is_retweet boolean, source_file string, line_no long, raw string, reason string, "
    "detected_at timestamp, user_id string, deleted_at timestamp"
)
RECORD_COLUMNS = [c.strip().split(" ")[0] for c in RECORD_DDL.split(",")]


def get_session(app_name: str = "tweet-sentiment", conf: dict | None = None):
    """The SparkSession, configured for Arrow-fed pandas UDFs.

    The master is never hard-coded: spark-submit (or ``spark.master`` in ``conf``) decides; when
    nothing sets it, as under ``python -m jobs.score``, the embedded default ``local[*]`` is used."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers fork from a driver that may have tokenised already (e.g. the demo)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        "spark.python.worker.reuse": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
    }
    settings.update(conf or {})
    # spark-submit's --master/--conf (and PYSPARK_SUBMIT_ARGS) live in the JVM: join (or start) the
    # gateway before reading them, or the local default below would override a cluster's master
    launch = None if SparkContext._gateway is not None or os.environ.get("PYSPARK_GATEWAY_PORT") else jvmcds.launch_args()
    if launch is None:
        SparkContext._ensure_initialized()
    else:  # this process launches the driver JVM: with the class archive (sentiment_core.jvmcds)
        before = os.environ.get("PYSPARK_SUBMIT_ARGS")
        os.environ["PYSPARK_SUBMIT_ARGS"] = launch
        try:
            SparkContext._ensure_initialized()
        finally:
            if before is None:
                os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
            else:
                os.environ["PYSPARK_SUBMIT_ARGS"] = before
    existing = SparkConf()
    if "spark.master" not in settings and not existing.contains("spark.master"):
        settings["spark.master"] = "local[*]"
    master = settings.get("spark.master") or existing.get("spark.master", "")
    if master.startswith("local") and not existing.contains("spark.pyspark.python"):
        # embedded Spark: the Python workers are this interpreter (e.g. the project's venv)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for k, v in settings.items():
        if k in ("spark.sql.execution.arrow.maxRecordsPerBatch", "spark.sql.shuffle.partitions") and existing.contains(k):
            continue  # a user's --conf wins over our defaults
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _records_frame(records: list[readers.Record]) -> pd.DataFrame:
    rows = []
    for kind, rec in records:
        row = dict.fromkeys(RECORD_COLUMNS)
        row.update(rec)
        row["kind"] = kind
        rows.append(row)
    df = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    for c in ("created_at", "detected_at", "deleted_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    df["line_no"] = df["line_no"].astype("Int64")
    df["is_retweet"] = df["is_retweet"].astype("boolean")
    return df


def parse_files(batches: Iterator[pd.DataFrame], chunk: int = 10_000) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (path, fmt) rows -> record rows, streamed in chunks."""
    for files in batches:
        for path, fmt in zip(files["path"], files["fmt"]):
            buf: list[readers.Record] = []
            for n, rec in enumerate(readers.read_file(path, fmt), 1):
                if rec[0] != "reject":  # tweets and deletes: their position, a deterministic order key
                    rec[1]["line_no"] = n
                buf.append(rec)
                if len(buf) >= chunk:
                    yield _records_frame(buf)
                    buf = []
            if buf:
                yield _records_frame(buf)


ROWS_PER_SCORING_TASK = 20_000


def scoring_partitions(rows: int, slots: int) -> int:
    """Scoring tasks for ``rows`` tweets on ``slots`` concurrent task slots: about one per
    ROWS_PER_SCORING_TASK rows, rounded up to whole waves of ``slots`` tasks, so that no wave runs
    with idle slots (3 tasks on 2 slots ran the last third on one core: 0.8x the rate of 4)."""
    slots = max(1, slots)
    return -(-max(1, -(-rows // ROWS_PER_SCORING_TASK)) // slots) * slots


def read_records(spark, paths: Sequence[str], fmt: str = "auto", columns: dict | None = None,
                 files_per_task: int = 1):
    """All inputs as one record DataFrame (RECORD_DDL). Archive and CSV files are parsed in Python
    (at most ``files_per_task`` files per task, at least one task per slot while there are files;
    a corrupt file is a reject, never a failed job);
    Parquet tables are read by Spark and mapped to the canonical columns with ``columns``."""
    from pyspark.sql import functions as F

    files = readers.list_input_files(list(paths))
    parquet = [p for p in files if fmt == "parquet" or (fmt == "auto" and p.endswith((".parquet", ".pq")))]
    parquet_set = set(parquet)
    others = [p for p in files if p not in parquet_set]
    frames = []
    if others:
        # at most files_per_task files per task, and no idle slot while there are files to parse
        n = max(-(-len(others) // max(1, files_per_task)), min(len(others), spark.sparkContext.defaultParallelism))
        # from pandas over Arrow: the list reaches the JVM without a Python task (a list of
        # tuples would start Python workers for an identity map: ~2 s in a fresh session)
        file_df = spark.createDataFrame(pd.DataFrame({"path": others, "fmt": fmt}), "path string, fmt string").repartition(n)
        frames.append(file_df.mapInPandas(parse_files, RECORD_DDL))
    if parquet:
        frames.append(map_parquet(spark.read.parquet(*parquet), columns or {}))
    if not frames:
        raise ValueError(f"no input files found under {list(paths)}")
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.select(*[F.col(c) for c in RECORD_COLUMNS])


PARQUET_DEFAULTS = {"id": "tweet_id", "text": "text", "time": "created_at", "user": "user", "lang": "lang",
                    "retweet": "is_retweet"}


def map_parquet(df, columns: dict):
    """A Parquet tweet table -> records: mapped columns; rows without id, time or text -> rejects."""
    from pyspark.sql import functions as F

    cols = {**PARQUET_DEFAULTS, **{k: v for k, v in columns.items() if v}}
    for required in ("id", "text", "time"):
        if cols[required] not in df.columns:
            raise ValueError(f"parquet input has no column {cols[required]!r} for the tweet {required} "
                             f"(columns: {df.columns}); name it with --{required}-col")

    def opt(key, typ):
        return F.col(cols[key]).cast(typ) if cols[key] in df.columns else F.lit(None).cast(typ)

    tid = F.col(cols["id"]).cast("string")
    ts = F.col(cols["time"]).cast("timestamp")
    text = F.col(cols["text"]).cast("string")
    reason = (F.when(tid.isNull() | (F.trim(tid) == ""), F.lit(schema.MISSING_ID))
              .when(ts.isNull(), F.lit(schema.BAD_TIMESTAMP))
              .when(text.isNull() | (F.trim(text) == ""), F.lit(schema.EMPTY_TEXT)))
    raw = F.substring(F.to_json(F.struct(*[F.col(c) for c in df.columns])), 1, schema.MAX_RAW_CHARS)
    src = F.input_file_name()
    return df.select(
        F.when(reason.isNull(), F.lit("tweet")).otherwise(F.lit("reject")).alias("kind"),
        tid.alias("tweet_id"), ts.alias("created_at"), F.to_date(ts).alias("dt"),
        opt("user", "string").alias("user"), opt("lang", "string").alias("lang"), text.alias("text"),
        F.coalesce(opt("retweet", "boolean"), F.lit(False)).alias("is_retweet"), src.alias("source_file"),
        F.lit(None).cast("long").alias("line_no"),
        F.when(reason.isNotNull(), raw).alias("raw"), reason.alias("reason"),
        F.when(reason.isNotNull(), F.current_timestamp()).alias("detected_at"),
        F.lit(None).cast("string").alias("user_id"), F.lit(None).cast("timestamp").alias("deleted_at"),
    )


# ---------------------------------------------------------------------------------------------
# Scoring inside executors


def resolve_artifact(path: str) -> str:
    """The artifact's path on this executor: as given (shared storage), else shipped with
    ``--archives model.tar.gz#NAME`` / ``--files`` into the working directory under its name."""
    if os.path.isdir(path):
        return path
    name = os.path.basename(path.rstrip("/"))
    for candidate in (name, os.path.join(os.getcwd(), name)):
        if os.path.isdir(candidate):
            return candidate
    try:
        from pyspark import SparkFiles

        shipped = SparkFiles.get(name)
        if os.path.isdir(shipped):
            return shipped
    except Exception:  # noqa: BLE001 - no SparkContext files here: fall through to the clear error
        pass
    raise FileNotFoundError(f"model artifact {path} is not visible on this executor; put it on shared storage "
                            "or ship it with --archives model.tar.gz#<name> and pass --model <name>")


def task_gpu() -> str | None:
    """This task's GPU address from Spark's resource scheduling, or None."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return None
    gpus = ctx.resources().get("gpu")
    return gpus.addresses[0] if gpus is not None and gpus.addresses else None


def worker_scorer(artifact: str, batch_size: int | None, backend: str = "auto"):
    """The scorer of this Python worker: loaded on the first task, reused by later tasks. A task
    with a GPU address scores on that GPU (``auto``: the artifact's fp16 ONNX graph when
    onnxruntime has the CUDA provider, else TensorFlow); a CPU task runs the artifact's ONNX backend
    when it has one (``auto``), without importing TensorFlow, as many mini-batches at once as the
    task has CPUs."""
    from pyspark import TaskContext

    from .artifact import load_metadata
    from .scorer import get_scorer, gpu_index, resolve_backend, select_device

    ctx = TaskContext.get()
    cpus = ctx.cpus() if ctx is not None else None
    if cpus:  # the Rust tokenizer's thread pool: this task's cores, not every core of the node
        os.environ["RAYON_NUM_THREADS"] = str(cpus)
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if cpus > 1 else "false"
    gpu = task_gpu()
    path = resolve_artifact(artifact)
    chosen = resolve_backend(load_metadata(path), backend, gpu=gpu is not None)
    if chosen != "tf":
        device = f"/GPU:{gpu_index(gpu)}" if gpu is not None else None
        return get_scorer(path, device=device, batch_size=batch_size, intra_op_threads=None if device else cpus,
                          backend=chosen)
    from .tfenv import tf

    tf(intra_op_threads=cpus)
    return get_scorer(path, device=select_device(gpu), batch_size=batch_size, intra_op_threads=cpus, backend="tf")


# Test-only fault injection, off by default: the first attempt of partition 0 fails, so Spark's
# task retry is exercised (tests/test_faults.py).
FAIL_FIRST_ATTEMPT_CONF = "spark.tweet_sentiment.test.failFirstAttempt"


# Each distinct text of an Arrow batch through the model once (the scorer's ``dedup``), on by
# default; off only to measure the model path on resampled archives, whose texts repeat far more
# than real ones (bench.scoring).
DEDUP_TEXTS_CONF = "spark.tweet_sentiment.dedupTexts"


def score_udf(artifact: str, batch_size: int | None, backend: str = "auto"):
    """pandas UDF: text -> struct(score float, label string, model_row boolean), model loaded once
    per worker. ``model_row`` is False for a repeat of a text earlier in its Arrow batch, which
    took that row's scores without a model pass (the jobs count the model's rows with it)."""
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    active = SparkSession.getActiveSession()
    fail_first = active is not None and active.conf.get(FAIL_FIRST_ATTEMPT_CONF, "false").lower() == "true"
    dedup = active is None or active.conf.get(DEDUP_TEXTS_CONF, "true").lower() != "false"

    @pandas_udf("score float, label string, model_row boolean")
    def score(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        if fail_first:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None and ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
                raise RuntimeError(f"injected failure ({FAIL_FIRST_ATTEMPT_CONF}): attempt 0 of partition 0")
        scorer = worker_scorer(artifact, batch_size, backend)
        for batch in texts:
            s, labels, model_rows = scorer.score_rows(batch.tolist(), dedup=dedup)
            yield pd.DataFrame({"score": s, "label": labels, "model_row": model_rows})

    return score
