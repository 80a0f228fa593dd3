"""Faults the scoring job survives.

Default suite (in-process, the shared ``local[2]`` session): a 1 MB tweet and a ``--batch-size``
far above the data are bounded by truncation and by the Arrow batch size, and
``spark.sql.execution.arrow.maxRecordsPerBatch`` does bound the batches a pandas UDF gets.

Markers ``slow`` and ``cluster`` (``make test-cluster``): each runs the job as its own Spark
application (a subprocess, as spark-submit would) and compares its output with a clean run's,
value for value (float32 scores bit for bit):

- a scoring task whose first attempt fails (``spark.tweet_sentiment.test.failFirstAttempt``):
  Spark retries it;
- an executor JVM SIGKILLed while it runs a scoring task (``local-cluster``, separate executor
  JVMs; compared with a clean ``local-cluster`` run): its tasks and lost shuffle output are
  recomputed elsewhere;
- the driver SIGKILLed while the scores are being written: readers never see a partial partition
  (the previous run's partitions stay whole), and re-running gives a clean run's output.

All runs use ``--backend tf --partitions 4`` so that they score the same rows in the same
batches with the same runtime (and so that loading TensorFlow in a Python worker marks "a scoring
task is running" for the executor kill)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from cluster import check
from jobs import score as job
from tests.conftest import FIXTURES, ROOT

V1_SAMPLE = FIXTURES / "archives" / "v1_sample.jsonl"
SAMPLE_ARCHIVE = ROOT / "data" / "sample" / "archive"  # 911 real tweets + 89 delete notices
FAULT_CONF = "spark.tweet_sentiment.test.failFirstAttempt"
RUN_ARGS = ["--backend", "tf", "--partitions", "4", "--include-text"]

# ---------------------------------------------------------------------------------------------
# Out-of-memory-prone inputs (default suite)


def _v1_tweet(tid: int, text: str) -> str:
    return json.dumps({"created_at": "Fri Jan 01 07:29:00 +0000 2021", "id": tid, "id_str": str(tid), "text": text,
                       "user": {"screen_name": f"u{tid % 97}"}, "lang": "en"})


def test_huge_text_and_giant_batch_are_bounded(spark, tiny_artifact, tmp_path):
    """A 1 MB tweet among 2,500 short ones, scored with --batch-size 100000 (so the scorer's
    mini-batch is the whole Arrow batch): the job completes, the text is kept whole in the output,
    the model saw it truncated to max_length, and every score equals the in-process scorer's."""
    from sentiment_core.artifact import load_metadata
    from sentiment_core.scorer import Scorer
    from sentiment_core.tokenization import TextEncoder

    meta = load_metadata(tiny_artifact)
    words = ["good", "bad", "lovely", "awful", "rain", "sun", "today", "never"]
    huge = " ".join(words[i % len(words)] for i in range(1_000_000 // 5))[:1_000_000]
    assert len(huge) == 1_000_000
    rng = np.random.default_rng(5)
    short = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(2500)]
    src = tmp_path / "in.jsonl"
    with open(src, "w") as f:
        f.write(_v1_tweet(1, huge) + "\n")
        for i, t in enumerate(short, start=2):
            f.write(_v1_tweet(i, t) + "\n")

    enc = TextEncoder(tiny_artifact / "tokenizer.json", meta["max_length"])
    assert len(enc.encode([huge])[0]) == meta["max_length"]  # truncated, not 200k tokens

    # a copy: the reused Python workers cache a scorer per (artifact path, batch size), and other tests
    # count the loads of tiny_artifact's path in them
    model = shutil.copytree(tiny_artifact, tmp_path / "artifact")
    out = tmp_path / "out"
    summary = job.run(job.parse_args(["--input", str(src), "--model", str(model), "--output", str(out),
                                      "--batch-size", "100000", "--partitions", "1", "--include-text"]), spark=spark)
    assert summary["reconciled"] is True and summary["scored"] == 2501 and summary["rejected"] == 0
    got = check.read_scores(out).set_index("tweet_id")
    assert len(got.loc["1", "text"]) == 1_000_000
    texts = [huge] + short
    ref, labels = Scorer(str(tiny_artifact)).score(texts)
    ids = [str(i) for i in range(1, 2502)]
    diff = np.abs(got.loc[ids, "score"].to_numpy(np.float64) - ref.astype(np.float64))
    assert diff.max() <= 1e-5, diff.max()
    assert got.loc[ids, "label"].tolist() == list(labels)


def test_arrow_batches_are_bounded_by_max_records(spark):
    """The bound the scorer relies on: a pandas UDF never gets more rows than
    spark.sql.execution.arrow.maxRecordsPerBatch (get_session's default: 2048), whatever the
    partition size."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from sentiment_core.spark import ARROW_BATCH_ROWS

    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    assert spark.conf.get(key) == str(ARROW_BATCH_ROWS) == "2048"

    @pandas_udf("long")
    def batch_rows(xs: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for x in xs:
            yield pd.Series([len(x)] * len(x))

    def sizes():
        df = spark.range(0, 5000, numPartitions=1).select(batch_rows(F.col("id")).alias("n"))
        return df.groupBy("n").count().toPandas().set_index("n")["count"].to_dict()

    assert sizes() == {2048: 2 * 2048, 5000 - 2 * 2048: 5000 - 2 * 2048}
    try:
        spark.conf.set(key, "300")
        got = sizes()
    finally:
        spark.conf.set(key, str(ARROW_BATCH_ROWS))
    assert max(got) == 300 and sum(got.values()) == 5000


# ---------------------------------------------------------------------------------------------
# Separate Spark applications (slow, cluster)


def _spark_env(master: str, conf: dict[str, str]) -> dict:
    from cluster.standalone import clean_env, spark_home

    submit = ["--master", master] + [a for k, v in conf.items() for a in ("--conf", f"{k}={v}")] + ["pyspark-shell"]
    return clean_env(spark_home(), PYSPARK_SUBMIT_ARGS=" ".join(submit), PYSPARK_PYTHON=sys.executable,
                     PYSPARK_DRIVER_PYTHON=sys.executable)


class JobProcess:
    """``python -m jobs.score`` as its own Spark application (its own JVM), in its own session.
    Every process it starts is tracked, so that :meth:`stop` can kill all of them, also the
    Python daemons that leave the process group."""

    def __init__(self, args: list[str], master: str, conf: dict[str, str], logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / "stdout", logs / "stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "jobs.score", *args], cwd=ROOT, env=_spark_env(master, conf),
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        self.seen: set[int] = set()
        self.t0 = time.perf_counter()

    def poll_tree(self) -> list[int]:
        kids = check.descendants(self.proc.pid)
        self.seen.update(kids)
        return kids

    def wait(self, timeout: float = 600.0, tick=None) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job did not finish in {timeout:.0f}s:\n{self.stderr()[-3000:]}")
            self.poll_tree()
            if tick is not None:
                tick(self)
            time.sleep(0.05)
        self.wall = time.perf_counter() - self.t0
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the driver and everything it started (the driver dies first)."""
        self.poll_tree()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        check.kill_all(self.seen)

    def stop(self) -> list[int]:
        """Kill whatever is still running; returns the pids that would not go."""
        if self.proc.poll() is None:
            self.kill()
        self.proc.wait(30)
        left = check.wait_gone(self.seen, 30)
        check.kill_all(left)
        return check.wait_gone(left, 10)

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def summary(self) -> dict | None:
        return check.last_json_line(self.stdout())


def _run_to_end(args, master, conf, logs, tick=None) -> tuple[JobProcess, int]:
    jp = JobProcess(args, master, conf, logs)
    try:
        rc = jp.wait(tick=tick)
    finally:
        left = jp.stop()
    assert not left, f"processes left running: {[(p, check.cmdline(p)) for p in left]}"
    return jp, rc


def _events_conf(d: Path) -> dict[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(d), "spark.eventLog.compress": "false"}


def _clean(tmp_path_factory, tiny_artifact, master: str) -> dict:
    base = tmp_path_factory.mktemp("clean")
    out = base / "out"
    args = ["--input", str(SAMPLE_ARCHIVE), "--model", str(tiny_artifact), "--output", str(out), *RUN_ARGS]
    jp, rc = _run_to_end(args, master, _events_conf(base / "events"), base / "logs")
    assert rc == 0, jp.stderr()[-3000:]
    summary = jp.summary()
    assert summary["reconciled"] is True and summary["scored"] == 911
    assert check.failed_attempts(check.read_events(base / "events")) == []
    print(f"clean run on {master}: {jp.wall:.1f}s")
    return {"out": out, "summary": summary, "scores": check.read_scores(out), "wall": jp.wall}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, tiny_artifact):
    """The reference: the same job and input, nothing injected, in its own application on local[2]."""
    return _clean(tmp_path_factory, tiny_artifact, "local[2]")


@pytest.fixture(scope="module")
def clean_cluster_run(tmp_path_factory, tiny_artifact):
    """The reference for runs with separate executor JVMs: nothing injected, local-cluster. (Scores
    from executor processes and from local mode can differ in the last bit for a few rows - 3 of
    20,000 generated tweets, none of these 911 - so each fault run is compared with a clean run of
    its own kind.)"""
    return _clean(tmp_path_factory, tiny_artifact, "local-cluster[2,1,2048]")


def _same_counts(a: dict, b: dict) -> None:
    keys = ("records_read", "scored", "rejected", "delete_notices", "filtered_lang", "filtered_duplicate",
            "partitions_written")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


@pytest.mark.slow
@pytest.mark.cluster
def test_failed_first_attempt_is_retried(clean_run, tiny_artifact, tmp_path):
    out = tmp_path / "out"
    args = ["--input", str(SAMPLE_ARCHIVE), "--model", str(tiny_artifact), "--output", str(out), *RUN_ARGS]
    conf = {FAULT_CONF: "true", **_events_conf(tmp_path / "events")}
    # local[2,4]: local mode with 4 attempts per task (plain local[N] never retries)
    jp, rc = _run_to_end(args, "local[2,4]", conf, tmp_path / "logs")
    assert rc == 0, jp.stderr()[-3000:]
    failed = check.failed_attempts(check.read_events(tmp_path / "events"))
    assert len(failed) == 1, failed
    assert (failed[0]["partition"], failed[0]["attempt"], failed[0]["reason"]) == (0, 0, "ExceptionFailure")
    assert f"injected failure ({FAULT_CONF}): attempt 0 of partition 0" in failed[0]["error"]
    summary = jp.summary()
    assert summary["reconciled"] is True
    _same_counts(summary, clean_run["summary"])
    assert check.diff_scores(check.read_scores(out), clean_run["scores"]) is None
    print(f"retried run: {jp.wall:.1f}s, failed attempts {[(f['partition'], f['attempt'], f['reason']) for f in failed]}")


@pytest.mark.slow
@pytest.mark.cluster
def test_executor_killed_mid_job(clean_cluster_run, tiny_artifact, tmp_path):
    """local-cluster[2,1,2048]: two workers, separate executor JVMs. As soon as a Python worker
    of an executor starts loading TensorFlow (only the scoring task does), that executor's JVM
    is SIGKILLed: the task is lost with its executor, Spark reschedules it (and recomputes the
    shuffle output that died with the executor), and the job still writes a clean run's output."""
    out = tmp_path / "out"
    args = ["--input", str(SAMPLE_ARCHIVE), "--model", str(tiny_artifact), "--output", str(out), *RUN_ARGS]
    killed: dict = {}

    def kill_executor_when_scoring(jp: JobProcess) -> None:
        if killed:
            return
        for pid in jp.poll_tree():
            if "pyspark" not in check.cmdline(pid) or not check.loads_tensorflow(pid):
                continue
            for a in check.ancestors(pid):
                if "CoarseGrainedExecutorBackend" in check.cmdline(a):
                    os.kill(a, signal.SIGKILL)
                    killed.update(pid=a, at=time.perf_counter() - jp.t0, cmd=check.cmdline(a)[-120:])
                    return

    jp, rc = _run_to_end(args, "local-cluster[2,1,2048]", _events_conf(tmp_path / "events"), tmp_path / "logs",
                         tick=kill_executor_when_scoring)
    assert killed, "no executor was seen scoring: nothing was killed"
    assert rc == 0, jp.stderr()[-3000:]
    events = check.read_events(tmp_path / "events")
    failed = check.failed_attempts(events)
    assert any(f["reason"] == "ExecutorLostFailure" for f in failed), failed
    assert check.removed_executors(events), "the killed executor was never removed"
    summary = jp.summary()
    assert summary["reconciled"] is True
    _same_counts(summary, clean_cluster_run["summary"])
    assert check.diff_scores(check.read_scores(out), clean_cluster_run["scores"]) is None
    print(f"executor kill: killed pid {killed['pid']} at {killed['at']:.1f}s; run {jp.wall:.1f}s; "
          f"failed attempts {[(f['stage'], f['partition'], f['attempt'], f['reason']) for f in failed]}; "
          f"removed {check.removed_executors(events)}")


@pytest.mark.slow
@pytest.mark.cluster
def test_driver_killed_mid_write(clean_run, tiny_artifact, tmp_path, spark):
    """The output already holds a finished run (a copy of the clean run's). A second run of the
    same input into it is SIGKILLed - driver, JVM and Python workers - as soon as its first data
    file exists in Spark's staging folder. A reader then sees whole partitions only, each of one
    run (here all of the earlier one), equal to the clean output; a re-run replaces them all and
    equals the clean output again."""
    out = tmp_path / "out"
    shutil.copytree(clean_run["out"], out)
    before = check.read_scores(out, with_run=True)
    first_run = clean_run["summary"]["run_id"]
    assert set(before["run_id"]) == {first_run}
    args = ["--input", str(SAMPLE_ARCHIVE), "--model", str(tiny_artifact), "--output", str(out), *RUN_ARGS]
    staged: dict = {}

    def kill_when_writing(jp: JobProcess) -> None:
        if staged:
            return
        files = [p for p in (out / "scores").glob(".spark-staging-*/**/part-*") if p.is_file()]
        if files:
            staged.update(files=[str(p.relative_to(out)) for p in files], at=time.perf_counter() - jp.t0)
            jp.kill()

    jp, rc = _run_to_end(args, "local[2]", {}, tmp_path / "logs", tick=kill_when_writing)
    assert staged, f"the run ended (rc {rc}) before writing any data file"
    assert rc == -signal.SIGKILL
    assert sorted(p.name for p in (out / "runs").iterdir()) == [f"{first_run}.json"], "the killed run committed"
    for table in ("rejects", "deletes"):  # staged by the killed run, never moved in
        assert sorted(p.name for p in (out / table).iterdir()) == [f"run_id={first_run}"], table
    # what a reader sees: whole partitions of one run each, the same rows and scores as before
    after = check.read_scores(out, with_run=True)
    per_partition = after.groupby(["model_version", "dt"])["run_id"].nunique()
    assert (per_partition == 1).all(), per_partition
    assert check.partition_files(out).keys() == check.partition_files(clean_run["out"]).keys()
    assert check.diff_scores(check.read_scores(out), clean_run["scores"]) is None
    assert list((out / "scores").glob(".spark-staging-*")), "expected the killed run's staging debris"
    # and as Spark reads the table
    from pyspark.sql import functions as F

    seen = spark.read.parquet(str(out / "scores"))
    row = seen.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("tweet_id").alias("ids")).first()
    assert (row["n"], row["ids"]) == (911, 911)
    runs = seen.groupBy("model_version", "dt").agg(F.countDistinct("run_id").alias("runs")).toPandas()
    assert (runs["runs"] == 1).all(), runs
    # the same command again
    jp2, rc2 = _run_to_end(args, "local[2]", {}, tmp_path / "logs2")
    assert rc2 == 0, jp2.stderr()[-3000:]
    summary = jp2.summary()
    assert summary["reconciled"] is True
    _same_counts(summary, clean_run["summary"])
    final = check.read_scores(out, with_run=True)
    assert set(final["run_id"]) == {summary["run_id"]}
    assert check.diff_scores(check.read_scores(out), clean_run["scores"]) is None
    print(f"driver kill: killed at {staged['at']:.1f}s with {len(staged['files'])} staged file(s); "
          f"re-run {jp2.wall:.1f}s")
