"""The driver JVM of embedded Spark runs: a class-data-sharing (CDS) archive and a quick JIT.

Most of a fresh local session's start-up is the JVM loading and verifying Spark's classes. Java
can map them from an archive dumped by an earlier run instead (AppCDS, JDK 13+). Measured here
(2 cores, OpenJDK 17, ``python -m jobs.score`` on the v1.1 minute file in a fresh process,
interleaved, median of 3): 41.2 s without the archive, 33.4 s with it.

    python -m sentiment_core.jvmcds          # build (or rebuild) the archive; ``make setup`` runs it

The rest of a first job's overhead is the JVM compiling Spark's planner and operators while they
run. Its optimising compiler (C2) competes with the Python workers for the cores and pays off
only in a long-lived JVM doing the per-row work itself; in an embedded CPU run the model does
nearly all of it. So the driver JVM stops at the quick compiler (``-XX:TieredStopAtLevel=1``).
Measured here (``local[2]``, MiniLM on CPU, interleaved): ``python -m jobs.score`` on the v1.1
minute file in a fresh process 30.1-35.7 s (median 34.6) against 37.7-41.6 s (median 40.1),
session start 3.8-4.4 s against 5.3-5.8 s, warm jobs on 4x the minute file 58.9 / 59.2 s against
58.6 / 60.5 s. With a model ~20x faster than MiniLM on CPU (the tests' tiny BERT, 50k tweets) a
session's third job ran 10-20% slower (14.7 / 15.3 s against 12.2 / 14.0 s), so a machine with
an NVIDIA GPU keeps the default compiler.

Both go only to a driver JVM that :func:`get_session <sentiment_core.spark.get_session>` launches
itself; a driver started by ``spark-submit`` (which launches the JVM before Python) or a user's
own ``--driver-java-options`` / ``SPARK_CONF_DIR`` are left alone. The archive lives inside the
Python environment, named after the Java runtime and PySpark version it was dumped from; a JVM
that finds it stale or unreadable ignores it and starts the slow way. Set
``TWEET_SENTIMENT_CDS=0`` to never use it, or to a file to use that archive instead;
``TWEET_SENTIMENT_QUICK_JIT=0`` keeps the JVM's default compiler.
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
JIT_ENV = "TWEET_SENTIMENT_QUICK_JIT"  # 0: the JVM's default compilers
# the quick compiler only; its code cache as large as the default compilers' (240 MB): on the quick
# compiler alone the JVM sizes it at 48 MB, which a long session (a month of nightly runs in one
# process) fills, and a full code cache disables compilation: the rest of the session ran interpreted
QUICK_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
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


def submit_args_with(submit_args: str | None, options: str) -> str | None:
    """``PYSPARK_SUBMIT_ARGS`` with ``options`` as the driver's Java options, or None to leave them
    as they are (the user chose driver Java options already)."""
    args = shlex.split(submit_args or "pyspark-shell")
    if "--driver-java-options" in args or any("spark.driver.extraJavaOptions" in a for a in args):
        return None
    if "pyspark-shell" not in args:
        args.append("pyspark-shell")
    at = len(args) - 1 - args[::-1].index("pyspark-shell")
    args[at:at] = ["--driver-java-options", options]
    return shlex.join(args)


def _nvidia_gpu() -> bool:
    return os.path.exists("/dev/nvidiactl")


def driver_options() -> str | None:
    """The Java options of a driver JVM this process launches: the class archive when there is a
    usable one, and the quick JIT unless turned off or an NVIDIA GPU is present; None for none."""
    options = []
    choice = os.environ.get(CHOICE_ENV, "")
    if choice != "0":
        archive = Path(choice) if choice not in ("", "1") else archive_path()
        # spark-submit splits the options string on blanks: a path with blanks or quotes would
        # break the JVM's start
        if archive.is_file() and not any(c.isspace() or c in "'\"" for c in str(archive)):
            options.append(f"-XX:SharedArchiveFile={archive} {QUIET}")
    if os.environ.get(JIT_ENV, "") != "0" and not _nvidia_gpu():
        options.append(QUICK_JIT)
    return " ".join(options) or None


def launch_args() -> str | None:
    """The ``PYSPARK_SUBMIT_ARGS`` for a driver JVM this process is about to launch, or None to
    launch it as configured (nothing to add, or Spark settings the user manages)."""
    options = None if os.environ.get("SPARK_CONF_DIR") else driver_options()
    return submit_args_with(os.environ.get("PYSPARK_SUBMIT_ARGS"), options) if options else None


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
