"""Slow: the scoring job with separate executor JVMs (local-cluster, fake GPU resource scheduling)
and through spark-submit. Run with ``pytest -m slow tests/test_cluster.py``.

This module never uses the session-scoped ``spark`` fixture: it stops any active session, makes
its own local-cluster session and stops it at the end. Run it in its own pytest process (as
``make test-all``-style ``-m slow`` runs do) when other modules in the same run need ``spark``
after it has run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from jobs import score as job
from tests.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.slow

ARCH = FIXTURES / "archives"
V1_SAMPLE = ARCH / "v1_sample.jsonl"
V2_PAGE = ARCH / "v2_page.jsonl"
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin" / "spark-submit").exists() else Path(sys.executable).parent


def _stop_active_spark() -> None:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """local-cluster[2,1,2048]: 2 workers, separate executor JVMs, each offering one fake GPU '0'
    shared by two tasks (task amount 0.5)."""
    from sentiment_core.spark import get_session

    script = tmp_path_factory.mktemp("gpu") / "discover_gpu.sh"
    script.write_text('#!/bin/bash\necho \'{"name":"gpu","addresses":["0"]}\'\n')
    script.chmod(0o755)
    _stop_active_spark()
    session = get_session("tweet-sentiment-cluster-test", conf={
        "spark.master": "local-cluster[2,1,2048]",
        "spark.worker.resource.gpu.amount": "1",
        "spark.worker.resource.gpu.discoveryScript": str(script),
        "spark.executor.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.discoveryScript": str(script),
        "spark.task.resource.gpu.amount": "0.5",
        "spark.executor.pyspark.memory": "2g",
        "spark.sql.shuffle.partitions": "4",
    })
    try:
        yield session
    finally:
        session.stop()


def test_local_cluster_gpu_address_and_scores(cluster, tiny_artifact, tmp_path):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from sentiment_core.scorer import Scorer

    @pandas_udf("gpu string, pid long")
    def probe(ids: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        import os

        from sentiment_core.spark import task_gpu

        gpu = task_gpu()
        for batch in ids:
            yield pd.DataFrame({"gpu": [gpu] * len(batch), "pid": [os.getpid()] * len(batch)})

    got = cluster.range(0, 40, numPartitions=4).select(probe(F.col("id")).alias("p")).select("p.*").toPandas()
    assert got["gpu"].tolist() == ["0"] * 40
    assert got["pid"].nunique() >= 1
    # the driver is not a task: no GPU there
    from sentiment_core.spark import task_gpu

    assert task_gpu() is None

    out = tmp_path / "out"
    summary = job.run(job.parse_args(["--input", str(V1_SAMPLE), str(V2_PAGE), "--model", str(tiny_artifact),
                                      "--output", str(out), "--include-text"]), spark=cluster)
    assert summary["reconciled"] is True
    assert summary["scored"] == 20 + 7 and summary["delete_notices"] == 8
    scores = cluster.read.parquet(str(out / "scores")).toPandas().sort_values("tweet_id")
    assert len(scores) == 27
    ref_score, ref_label = Scorer(str(tiny_artifact)).score(scores["text"].tolist())
    diff = np.abs(scores["score"].to_numpy(np.float64) - ref_score.astype(np.float64))
    assert diff.max() <= 1e-5, diff.max()
    assert scores["label"].tolist() == list(ref_label)


def test_spark_submit(tiny_artifact, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYSPARK_PYTHON=str(VENV_BIN / "python"), PYSPARK_DRIVER_PYTHON=str(VENV_BIN / "python"),
               SPARK_LOCAL_IP="127.0.0.1", VIRTUAL_ENV=str(VENV_BIN.parent),
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [str(VENV_BIN / "spark-submit"), "--master", "local[2]", "jobs/score.py",
           "--input", str(V1_SAMPLE), "--model", str(tiny_artifact), "--output", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["reconciled"] is True
    assert (summary["records_read"], summary["scored"], summary["delete_notices"]) == (28, 20, 8)
    assert (out / "runs" / f"{summary['run_id']}.json").is_file()
