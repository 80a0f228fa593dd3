"""The scoring jobs' output tables, by name, for Spark SQL.

An output directory (``jobs/score.py``, ``jobs/nightly.py``) holds::

    scores/model_version=V/dt=YYYY-MM-DD/*.parquet   rejects/run_id=R/*.parquet
    deletes/run_id=R/*.parquet                       run_log/*.parquet      runs/R.json

:func:`register_tables` makes session temp views of the ones present (``scores``, ``rejects``,
``deletes``, ``run_log`` and ``runs``, the run summaries); :func:`create_catalog_tables` makes
EXTERNAL tables over the same files in Spark's catalog, so that ``spark-sql`` or any later session
on the same metastore can query them by name. Partition values are read as written, never
type-guessed (a model version ``01`` stays ``"01"``); in the views ``dt`` is a date, in the
catalog tables the string ``YYYY-MM-DD``. PySpark is imported lazily.
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager

from . import readers
from .storage import spark_path

log = logging.getLogger(__name__)

PARQUET_TABLES = ("scores", "rejects", "deletes", "run_log")
# jobs.nightly --max-purges: per model version, the partitions whose delete notices wait for a run
# to purge them ({dt: run}), beside that version's manifest shards
MANIFEST = "_manifest"
PENDING_DELETES = "_pending_deletes.json"
VIEWS = PARQUET_TABLES + ("runs",)
_INFER = "spark.sql.sources.partitionColumnTypeInference.enabled"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _join(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name


def _present(path: str) -> bool | None:
    """True/False for a local path (a directory with a visible entry), None for a URI (unknown)."""
    local = readers._local_path(path)
    if local is None:
        return None
    return os.path.isdir(local) and any(not e.startswith((".", "_")) for e in os.listdir(local))


@contextmanager
def _partition_values_as_strings(spark):
    old = spark.conf.get(_INFER, None)
    spark.conf.set(_INFER, "false")
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(_INFER)
        else:
            spark.conf.set(_INFER, old)


def read_table(spark, output_dir: str, name: str):
    """One output table as a DataFrame, or None when it is not there. Partition discovery is on;
    partition columns are strings, except ``dt``, which is cast to a date."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    path = _join(str(output_dir), "runs" if name == "runs" else name)
    if _present(path) is False:
        return None
    try:
        if name == "runs":
            df = spark.read.option("multiLine", "true").json(spark_path(_join(path, "*.json")))
        else:
            with _partition_values_as_strings(spark):
                df = spark.read.option("basePath", spark_path(path)).parquet(spark_path(path))
    except AnalysisException as e:  # no such path / no files to infer a schema from
        log.info("table %s not read from %s: %s", name, path, str(e).splitlines()[0])
        return None
    if "dt" in df.columns:
        df = df.withColumn("dt", F.to_date("dt"))
    if name == "scores" and (waiting := _waiting_deletes(spark, str(output_dir))) is not None:
        df = df.join(waiting, "tweet_id", "left_anti")
    return df


def pending_deletes(output_dir: str, version: str) -> dict[str, str]:
    """A model version's partitions whose delete notices wait for a nightly purge: {dt: the run
    that first deferred it} (none: {})."""
    import json

    f = os.path.join(output_dir, MANIFEST, version, PENDING_DELETES)
    if not os.path.exists(f):
        return {}
    with open(f) as fh:
        return json.load(fh)


def _waiting_deletes(spark, output_dir: str):
    """The tweet ids of the delete notices that wait for a nightly run to remove their tweets from
    the partitions (``jobs.nightly --max-purges``), or None when nothing waits: the ``scores`` view
    leaves those tweets out already."""
    import glob

    root = readers._local_path(output_dir)
    if root is None:
        return None  # the nightly job writes local (or mounted) outputs only
    days = set()
    for f in glob.glob(os.path.join(glob.escape(root), MANIFEST, "*", PENDING_DELETES)):
        days.update(pending_deletes(root, os.path.basename(os.path.dirname(f))))
    months = sorted({d[:7] for d in days})
    paths = [p for m in months if _present(p := _join(root, f"deletes/target_month={m}"))]
    if not paths:
        return None
    return spark.read.parquet(*map(spark_path, paths)).select("tweet_id").distinct()


def register_tables(spark, output_dir: str) -> list[str]:
    """Register the tables present under ``output_dir`` as temp views; returns their names
    (a subset of ``VIEWS``, in that order). Absent tables are skipped, not errors."""
    names = []
    for name in VIEWS:
        df = read_table(spark, output_dir, name)
        if df is not None:
            df.createOrReplaceTempView(name)
            names.append(name)
    log.info("registered views %s over %s", names, output_dir)
    return names


def create_catalog_tables(spark, output_dir: str, database: str = "tweet_sentiment") -> list[str]:
    """EXTERNAL Parquet tables ``database.scores`` (``rejects``, ``deletes``, ``run_log``: those
    present) over the files under ``output_dir``, their partitions registered. Safe to re-run:
    an existing table keeps its definition and gets the partitions and files added since.
    Returns the qualified names."""
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"database name {database!r} must be letters, digits and _ (not starting with a digit)")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    created = []
    for name in PARQUET_TABLES:
        path = _join(str(output_dir), name)
        if read_table(spark, output_dir, name) is None:
            continue
        qualified = f"{database}.{name}"
        if not spark.catalog.tableExists(qualified):
            with _partition_values_as_strings(spark):
                # no SQL text: the location is an argument; schema and partition columns are inferred
                spark.catalog.createTable(qualified, path=spark_path(path),
                                          source="parquet")
        if _partitioned(spark, qualified):
            spark.catalog.recoverPartitions(qualified)  # = MSCK REPAIR TABLE / ALTER TABLE ... RECOVER PARTITIONS
        spark.catalog.refreshTable(qualified)
        created.append(qualified)
    log.info("catalog tables %s over %s", created, output_dir)
    return created


def _partitioned(spark, qualified: str) -> bool:
    db, name = qualified.split(".")
    return any(c.isPartition for c in spark.catalog.listColumns(name, db))
