"""A class-data-sharing (CDS) archive for the driver JVM of embedded Spark runs.

Most of a fresh local session's start-up is the JVM loading and verifying Spark's classes. Java
can map them from an archive dumped by an earlier run instead (AppCDS, JDK 13+). Measured here
(2 cores, OpenJDK 17, ``python -m jobs.score`` on the v1.1 minute file in a fresh process,
interleaved, median of 3): 41.2 s without the archive, 33.4 s with it.

    python -m sentiment_core.jvmcds          # build (or rebuild) the archive; ``make setup`` runs it

The archive lives inside the Python environment, named after the Java runtime and PySpark version
it was dumped from. :func:`get_session <sentiment_core.spark.get_session>` passes it to a driver
JVM that it launches itself; a driver started by ``spark-submit`` (which launches the JVM before
Python) or a user's own ``--driver-java-options`` / ``SPARK_CONF_DIR`` are left alone. A JVM that
finds the archive stale or unreadable ignores it and starts the slow way. Set
``TWEET_SENTIMENT_CDS=0`` to never use it, or to a file to use that archive instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

CHOICE_ENV = "TWEET_SENTIMENT_CDS"  # 0: off; a path: that archive; unset: this environment's
# JVM warnings (e.g. a stale archive) to stderr: the jobs' stdout ends with their JSON summary
QUIET = "-Xshare:auto -Xlog:disable -Xlog:all=warning:stderr"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.isfile(java) else ""  # none: Spark will say so


def archive_path() -> Path:
    """Where the archive for this environment's Java and PySpark lives (it may not exist)."""
    import pyspark

    java = _java()
    stamp = f"{java}|{os.path.getmtime(java) if java else 0}|{pyspark.__version__}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return Path(sys.prefix) / "var" / "tweet-sentiment" / f"spark-driver-{key}.jsa"


def submit_args_with_archive(submit_args: str | None, archive: Path) -> str | None:
    """``PYSPARK_SUBMIT_ARGS`` with the archive's driver options added, or None to leave them as
    they are (the user chose driver Java options already, or the archive's path has blanks or
    quotes, which the driver options string cannot carry safely)."""
    if any(c.isspace() or c in "'\"" for c in str(archive)):
        return None
    args = shlex.split(submit_args or "pyspark-shell")
    if "--driver-java-options" in args or any("spark.driver.extraJavaOptions" in a for a in args):
        return None
    if "pyspark-shell" not in args:
        args.append("pyspark-shell")
    at = len(args) - 1 - args[::-1].index("pyspark-shell")
    args[at:at] = ["--driver-java-options", f"-XX:SharedArchiveFile={archive} {QUIET}"]
    return shlex.join(args)


def launch_args() -> str | None:
    """The ``PYSPARK_SUBMIT_ARGS`` for a driver JVM this process is about to launch, or None to
    launch it as configured (no archive, disabled, or Spark settings the user manages)."""
    choice = os.environ.get(CHOICE_ENV, "")
    if choice == "0" or os.environ.get("SPARK_CONF_DIR"):
        return None
    archive = Path(choice) if choice not in ("", "1") else archive_path()
    if not archive.is_file():
        return None
    return submit_args_with_archive(os.environ.get("PYSPARK_SUBMIT_ARGS"), archive)


def _workload() -> None:
    """Run in the dumping JVM's driver: each kind of work the jobs do once, so that the classes
    they load go into the archive (SQL, window and aggregation, Python workers, Arrow and pandas
    UDFs, Parquet write and read)."""
    import tempfile

    from sentiment_core.spark import get_session

    spark = get_session("tweet-sentiment-cds", conf={"spark.master": "local[2]"})
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = spark.createDataFrame(pd.DataFrame({"id": [str(i) for i in range(64)], "text": ["a b"] * 64}))
    w = Window.partitionBy("id").orderBy("text")
    df = df.withColumn("rn", F.row_number().over(w)).where("rn = 1").repartition(2, "text")
    df = df.sortWithinPartitions(F.length("text")).mapInPandas(lambda it: it, df.schema)

    @F.pandas_udf("double")
    def length(s: pd.Series) -> pd.Series:
        return s.str.len().astype(float)

    out = tempfile.mkdtemp(prefix="cds_")
    df.withColumn("n", length("text")).write.mode("overwrite").option("compression", "zstd").parquet(out)
    spark.read.parquet(out).groupBy("text").agg(F.count("*"), F.countDistinct("id")).collect()
    spark.sparkContext.parallelize([1, 2], 2).map(lambda x: x).collect()
    spark.stop()
    shutil.rmtree(out, ignore_errors=True)


def build(path: Path | None = None) -> Path:
    """Dump the archive: a child process whose driver JVM runs the workload and writes the
    classes it loaded at exit; moved into place only when complete."""
    path = Path(path or archive_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    env = {**os.environ, CHOICE_ENV: "0",
           "PYSPARK_SUBMIT_ARGS": f"--driver-java-options '-XX:ArchiveClassesAtExit={tmp} {QUIET}' pyspark-shell"}
    try:
        subprocess.run([sys.executable, "-c", "from sentiment_core.jvmcds import _workload; _workload()"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not tmp.is_file():
            raise RuntimeError("the JVM wrote no archive (a JDK before 13?)")
        os.replace(tmp, path)
    except subprocess.CalledProcessError as e:
        errors = [line for line in e.stderr.splitlines() if "[cds]" not in line]  # not its skip notes
        raise RuntimeError("archive run failed: " + "\n".join(errors[-20:])) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = build()
    except (RuntimeError, OSError) as e:  # an optional speed-up: never fails a setup
        print(f"warning: no JVM class archive ({e}); Spark starts without it", file=sys.stderr)
        return 0
    print(f"JVM class archive: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
