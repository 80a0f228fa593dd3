"""Running on a real cluster: the bundle (cluster.package) and a Spark standalone cluster on this
machine (cluster.standalone).

The bundle checks are cheap and run by default. The cluster test (markers ``slow`` and
``cluster``: ``make test-cluster``) starts a master and two workers from the installed pyspark,
submits the scoring job with the packed environment and the shipped model - with the driver's
venv, the project's sources and the model's folder hidden from the workers where the machine
allows a private mount namespace - checks the output against ``python -m jobs.score`` on
``local[2]``, and stops everything. It packs the venv on its first run (about a minute, then
cached under ``out/cluster/bundle``)."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from cluster import check, package
from tests.conftest import FIXTURES, ROOT

V1_SAMPLE = FIXTURES / "archives" / "v1_sample.jsonl"
V2_PAGE = FIXTURES / "archives" / "v2_page.jsonl"


def test_project_zip_is_importable_on_its_own(tmp_path):
    """The --py-files zip holds every module of the packages the jobs import, builds to the same
    bytes twice, and a Python that sees nothing but the zip imports the jobs from it."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    za, zb = package.build_project_zip(a), package.build_project_zip(b)
    assert za.read_bytes() == zb.read_bytes()
    names = set(zipfile.ZipFile(za).namelist())
    expected = {p.relative_to(ROOT).as_posix() for pkg in package.PROJECT_PACKAGES for p in (ROOT / pkg).rglob("*.py")
                if "__pycache__" not in p.parts}
    assert names == expected and "sentiment_core/spark.py" in names and "jobs/score.py" in names
    assert {p.name for p in a.iterdir()} >= set(package.ENTRY_POINTS)
    # -S, then site-packages appended by hand: its libraries but not its .pth files (so not the
    # editable install of the checkout), and the working directory is elsewhere
    site = sysconfig.get_paths()["purelib"]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.append(sys.argv[2]); "
            "import jobs.score, sentiment_core.artifact; print(jobs.score.__file__); print(sentiment_core.artifact.__file__)")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(za), site], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(za / "jobs" / "score.py"), str(za / "sentiment_core" / "artifact.py")]


def test_model_archive_unpacks_into_the_artifact(tiny_artifact, tmp_path):
    from sentiment_core.artifact import load_metadata

    info = package.pack_model(str(tiny_artifact), tmp_path)
    assert info["alias"] == tiny_artifact.name and not info["cached"]
    assert package.pack_model(str(tiny_artifact), tmp_path)["cached"]
    # what Spark does with --archives model.tar.gz#ALIAS: unpack into ./ALIAS
    dest = tmp_path / "executor" / info["alias"]
    with tarfile.open(tmp_path / package.MODEL_ARCHIVE) as tar:
        tar.extractall(dest, filter="data")
    original = {p.relative_to(tiny_artifact): p.read_bytes() for p in tiny_artifact.rglob("*") if p.is_file()}
    unpacked = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert unpacked == original
    assert load_metadata(dest)["model_version"] == load_metadata(tiny_artifact)["model_version"] == info["model_version"]


def test_submit_args_ship_env_model_and_project(tmp_path):
    args = package.submit_args(tmp_path, "artifact", "/opt/venv/bin/python", {"spark.task.resource.gpu.amount": "0.5"})
    assert args == ["--archives", f"{tmp_path}/env.tar.gz#env,{tmp_path}/model.tar.gz#artifact",
                    "--py-files", f"{tmp_path}/tweet_sentiment.zip",
                    "--conf", "spark.pyspark.python=./env/bin/python",
                    "--conf", "spark.pyspark.driver.python=/opt/venv/bin/python",
                    "--conf", "spark.task.resource.gpu.amount=0.5"]


@pytest.mark.slow
@pytest.mark.cluster
def test_standalone_cluster_end_to_end(tiny_artifact, tmp_path):
    from cluster import standalone

    base = tmp_path / "cluster"
    report = standalone.run(str(tiny_artifact), [str(V1_SAMPLE), str(V2_PAGE)], base=base, compare_local=True)
    print(json.dumps({k: report.get(k) for k in ("cluster", "local", "shipping_seconds", "env_bytes", "env_pack_seconds",
                                                 "isolated", "checks")}, indent=1))
    assert report["checks"] == {k: True for k in report["checks"]}, report
    assert set(report["checks"]) >= {"exit_0", "reconciled", "ran_on_this_master", "no_failed_task_attempts",
                                     "every_worker_ran_an_executor_with_env_and_model", "every_executor_got_gpu_0",
                                     "nothing_left_running", "same_output_as_local"}
    s = report["summary"]
    # v1_sample: 20 tweets + 8 delete notices; v2_page: 7 tweets (tests/fixtures/README.md)
    assert (s["records_read"], s["scored"], s["delete_notices"], s["rejected"]) == (35, 27, 8, 0)
    assert report["isolated"] == (standalone.isolation_flags() is not None)
    if report["isolated"]:
        hidden = set(report["hidden_from_workers"])
        assert str((ROOT / "sentiment_core").resolve()) in hidden and str(tiny_artifact.parent.resolve()) in hidden
        assert str(package.DEFAULT_OUT.resolve()) in hidden
        if sys.prefix != sys.base_prefix:
            assert str(Path(sys.prefix).resolve()) in hidden
    assert len(report["executors"]) == 2 and all(e["resources"] == {"gpu": ["0"]} for e in report["executors"])
    assert report["left_running"] == [] and check.processes_using(base) == []
    scores = check.read_scores(report["output"])
    assert len(scores) == 27 and scores["tweet_id"].is_unique
