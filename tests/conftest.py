"""Shared fixtures: one local[2] SparkSession, a tiny real BERT checkpoint and a tiny trained
artifact (made through the real training CLI), all session-scoped."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture(scope="session")
def spark():
    from sentiment_core.spark import get_session

    session = get_session("tweet-sentiment-tests", conf={"spark.master": "local[2]",
                                                         "spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


def pytest_collection_modifyitems(items):
    """Tests that need their own Spark cluster (separate JVMs) stop the shared local[2] session:
    run them after every test that uses it."""
    items.sort(key=lambda item: item.module.__name__.endswith("test_cluster"))


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    from tests.tinybert import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_base) -> Path:
    """A finished training run of the tiny model on 300 real tweets (2 epochs, via the CLI)."""
    from training.train import main

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    rc = main(["--data", str(FIXTURES / "sentiment140_300.csv"), "--output-dir", str(out),
               "--base-model", str(tiny_base), "--epochs", "2", "--batch-size", "16",
               "--learning-rate", "1e-3", "--log-every", "2", "--checkpoint-every", "5"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def tiny_artifact(tiny_run) -> Path:
    return tiny_run / "artifact"
