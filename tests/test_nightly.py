"""The nightly job on a generated 3-day archive: incremental runs, no-op re-run, late file, delete
on a later day, a run killed mid-commit and its recovery, a second model version."""
from __future__ import annotations

import bz2
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

DAYS = ["2021-01-01", "2021-01-02", "2021-01-03"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    from bench.make_archive import generate

    root = tmp_path_factory.mktemp("archive")
    generate(root, days=3, tweets_per_day=120, start=DAYS[0], seed=3, files_per_day=2)
    return root


def nightly(spark, archive, artifact, out, *extra):
    from jobs import nightly as N

    return N.run(N.parse_args(["--archive-root", str(archive), "--model", str(artifact), "--output", str(out), *extra]),
                 spark=spark)


def table(out: Path) -> pd.DataFrame:
    import pyarrow.dataset as ds

    t = ds.dataset(str(out / "scores"), format="parquet", partitioning="hive").to_table().to_pandas()
    t["dt"] = t["dt"].astype(str)
    return t.drop(columns=["run_id", "scored_at"]).sort_values(["model_version", "tweet_id"]).reset_index(drop=True)


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame):
    assert not a.duplicated(["model_version", "dt", "tweet_id"]).any()
    assert list(a["tweet_id"]) == list(b["tweet_id"])
    assert (a["label"] == b["label"]).all() and (a["dt"] == b["dt"]).all()
    assert np.max(np.abs(a["score"].to_numpy() - b["score"].to_numpy())) <= 1e-5
    cols = [c for c in a.columns if c != "score"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def archive_lines(archive: Path, day: str):
    y, m, d = day.split("-")
    for f in sorted((archive / y / m / d).rglob("*.json.bz2")):
        for line in bz2.open(f, "rt"):
            yield json.loads(line)


@pytest.fixture(scope="module")
def clean(spark, archive, tiny_artifact, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("clean") / "out"
    s = nightly(spark, archive, tiny_artifact, out)
    assert s["reconciled"] and s["files_new"] == 6
    assert 0 < s["model_rows"] < s["scored"]  # the resampled archive repeats texts: each through the model once
    return table(out)


def test_night_by_night_then_noop_equals_clean_run(spark, archive, tiny_artifact, tmp_path, clean):
    out = tmp_path / "out"
    nights = []
    for day in DAYS:
        s = nightly(spark, archive, tiny_artifact, out, "--date", day)
        assert s["files_new"] == 2 and not s["noop"] and s["reconciled"]
        nights.append(s)
    again = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[-1])
    assert again["noop"] is True and again["files_new"] == 0
    assert_same_table(table(out), clean)
    # every night left its rejects partition (empty on a night without rejects), one queryable table
    from sentiment_core.tables import read_table

    assert {f"run_id={n['run_id']}" for n in nights} <= {p.name for p in (out / "rejects").iterdir()}
    assert read_table(spark, str(out), "rejects").count() == sum(n["rejected"] for n in nights)
    log = pd.read_parquet(out / "run_log")
    assert len(log) == 4 and log["noop"].sum() == 1
    # the manifest: one shard per archive day, and a night reads only its own days' shards
    version = nights[0]["model_version"]
    shards = out / "_manifest" / version
    assert sorted(p.name for p in shards.iterdir()) == [f"{d}.json" for d in DAYS]
    first = (shards / f"{DAYS[0]}.json").read_text()
    (shards / f"{DAYS[0]}.json").write_text("not json: a night of another day must not read this")
    assert nightly(spark, archive, tiny_artifact, out, "--date", DAYS[-1])["noop"] is True
    # a manifest of the earlier layout (one file per version) is split into shards on the next run
    legacy = {"model_version": version, "files": {}}
    for d in DAYS:
        text = first if d == DAYS[0] else (shards / f"{d}.json").read_text()
        legacy["files"].update(json.loads(text)["files"])
    shutil.rmtree(shards)
    (out / "_manifest" / f"{version}.json").write_text(json.dumps(legacy))
    assert nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])["noop"] is True
    assert not (out / "_manifest" / f"{version}.json").exists()
    assert sorted(p.name for p in shards.iterdir()) == [f"{d}.json" for d in DAYS]
    assert json.loads((shards / f"{DAYS[0]}.json").read_text())["files"] == json.loads(first)["files"]


def test_a_night_lists_only_its_own_days(tmp_path, monkeypatch):
    """With a date range, the grab's other days, months and years and other dt= folders are not
    walked at all (a year of the grab is 525,600 minute files); the files found are the same."""
    from jobs import nightly as N

    names = ["2020/12/31/23/59.json.bz2", "2021/01/01/00/00.json.bz2", "2021/01/02/07/29.json.bz2",
             "2021/01/02/07/30.json.bz2", "2021/02/01/00/00.json.bz2", "dt=2021-01-02/a.json",
             "dt=2021-01-03/b.json", "twitter-stream-2021-01-02.tar", "README.md", "notes.txt",
             "archiveteam-twitter-stream-2021-01_files.xml", "archiveteam-twitter-stream-2021-01_archive.torrent"]
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_text("{}\n")
    walked = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p=".": walked.append(os.path.relpath(p, tmp_path)) or scandir(p))
    skipped = []
    found = N.discover(str(tmp_path), "auto", "2021-01-02", "2021-01-02", skipped)
    # an Internet Archive item's metadata and a README hold no tweets: skipped, and said so
    assert sorted(os.path.basename(f) for f in skipped) == [
        "README.md", "archiveteam-twitter-stream-2021-01_archive.torrent", "archiveteam-twitter-stream-2021-01_files.xml"]
    assert sorted(found) == ["2021/01/02/07/29.json.bz2", "2021/01/02/07/30.json.bz2",
                             "dt=2021-01-02/a.json", "notes.txt", "twitter-stream-2021-01-02.tar"]
    assert sorted(walked) == [".", "2021", "2021/01", "2021/01/02", "2021/01/02/07", "dt=2021-01-02"]
    assert [found[n]["date"] for n in sorted(found)] == ["2021-01-02", "2021-01-02", "2021-01-02", None, "2021-01-02"]
    assert {N.manifest_shard(n) for n in found} == {"2021-01-02", "undated"}
    assert len(N.discover(str(tmp_path), "grab", None, None)) == 6  # no range: everything of the layout


def test_day_tar_files_give_the_table_of_the_extracted_archive(spark, archive, tiny_artifact, tmp_path, clean):
    """The grab's days as downloaded, one tar of minute files each: the same table as the extracted
    archive (source_file names the member inside its tar), one manifest entry per tar, a no-op re-run."""
    import tarfile

    tars = tmp_path / "tars"
    tars.mkdir()
    for day in DAYS:
        y, m, d = day.split("-")
        with tarfile.open(tars / f"twitter-stream-{day}.tar", "w") as tar:
            tar.add(archive / y / m / d, arcname=f"{y}/{m}/{d}")
    out = tmp_path / "out"
    s = nightly(spark, tars, tiny_artifact, out)
    assert s["reconciled"] and s["files_new"] == 3
    assert (s["parse"]["tar_files"], s["parse"]["tar_members"]) == (3, 6)
    got, want = table(out), clean.copy()
    assert got["source_file"].str.contains(r"\.tar!/", regex=True).all()
    got["source_file"] = got["source_file"].str.split("!/").str[1]
    want["source_file"] = want["source_file"].map(lambda p: os.path.relpath(p, archive))
    assert_same_table(got, want)
    assert nightly(spark, tars, tiny_artifact, out)["noop"] is True
    # the manifest knows the day a tar's tweets went to; a changed tar replaces its old rows
    version = s["model_version"]
    shard = json.loads((out / "_manifest" / version / f"{DAYS[0]}.json").read_text())["files"]
    assert shard[f"twitter-stream-{DAYS[0]}.tar"]["dts"] == [DAYS[0]]
    y, m, d = DAYS[0].split("-")
    first, dropped = sorted(p.relative_to(archive) for p in (archive / y / m / d).rglob("*.json.bz2"))
    with tarfile.open(tars / f"twitter-stream-{DAYS[0]}.tar", "w") as tar:  # one minute file fewer
        tar.add(archive / first, arcname=str(first))
    again = nightly(spark, tars, tiny_artifact, out)
    assert again["files_changed"] == 1 and again["reconciled"]
    sources = table(out)["source_file"]
    assert not sources.str.endswith(f"!/{dropped}").any() and sources.str.endswith(f"!/{first}").any()


def test_delete_on_a_later_day_removes_the_earlier_tweet(spark, archive, tiny_artifact, tmp_path, clean, monkeypatch):
    """... and a month of notices read with more files than DELETE_FILES_PER_MONTH (0 here) is
    compacted into one file: no notice lost."""
    from jobs import nightly as N

    monkeypatch.setattr(N, "DELETE_FILES_PER_MONTH", 0)
    day1_ids = {t["id_str"] for t in archive_lines(archive, DAYS[0]) if "delete" not in t}
    late = [t["delete"]["status"]["id_str"] for day in DAYS[1:] for t in archive_lines(archive, day)
            if "delete" in t and t["delete"]["status"]["id_str"] in day1_ids]
    assert late, "the generator should delete some day-1 tweets on later days"
    out = tmp_path / "out"
    first = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    assert set(late) <= set(table(out)["tweet_id"])
    month = out / "deletes" / "target_month=2021-01"
    assert len(list(month.glob("*.parquet"))) == 1  # the first run's notices: nothing to compact yet
    second = nightly(spark, archive, tiny_artifact, out, "--from", DAYS[1], "--to", DAYS[2])
    assert len(list(month.glob("*.parquet"))) == 1  # compacted, the second run's notices in it
    notices = pd.read_parquet(month)
    assert len(notices) == first["delete_notices"] + second["delete_notices"]
    assert set(late) <= set(notices["tweet_id"])
    final = table(out)
    assert not set(late) & set(final["tweet_id"])
    assert not set(late) & set(clean["tweet_id"])


def test_deletes_of_earlier_days_can_wait_for_a_later_run(spark, archive, tiny_artifact, tmp_path, clean):
    """--max-purges bounds the earlier partitions a run rewrites for new delete notices: the rest
    wait, recorded, and a later run removes those tweets; the end state equals the clean run's."""
    day1_ids = {t["id_str"] for t in archive_lines(archive, DAYS[0]) if "delete" not in t}
    late = [t["delete"]["status"]["id_str"] for t in archive_lines(archive, DAYS[1])
            if "delete" in t and t["delete"]["status"]["id_str"] in day1_ids]
    assert late, "the generator deletes a day-1 tweet on day 2"
    out = tmp_path / "out"
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    s = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1], "--max-purges", "0")
    assert s["partitions_written"] == [DAYS[1]] and s["partitions_purged"] == []
    assert s["partitions_waiting_for_deletes"] == 1 and s["reconciled"]
    assert set(late) <= set(table(out)["tweet_id"])  # still in the files: their partition waits
    from sentiment_core.tables import read_table

    view = {r["tweet_id"] for r in read_table(spark, str(out), "scores").select("tweet_id").collect()}
    assert not set(late) & view and view == set(table(out)["tweet_id"]) - set(late)  # the view leaves them out
    again = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1], "--max-purges", "0")
    assert again["noop"] is True and again["partitions_waiting_for_deletes"] == 1
    s = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[2])
    assert s["partitions_purged"][0] == DAYS[0] and s["partitions_waiting_for_deletes"] == 0
    assert_same_table(table(out), clean)


def test_a_run_with_nothing_to_score_purges_the_waiting_partitions(spark, archive, tiny_artifact, tmp_path):
    """An archive that stopped growing: running the same night again scores nothing but removes
    the deleted tweets that waited for a purge from the files; then the run is a no-op."""
    day1_ids = {t["id_str"] for t in archive_lines(archive, DAYS[0]) if "delete" not in t}
    late = {t["delete"]["status"]["id_str"] for t in archive_lines(archive, DAYS[1])
            if "delete" in t and t["delete"]["status"]["id_str"] in day1_ids}
    out = tmp_path / "out"
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1], "--max-purges", "0")
    rows = len(table(out))
    assert late <= set(table(out)["tweet_id"])
    s = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1])
    assert not s["noop"] and s["files_new"] == s["files_changed"] == 0 and s["records_read"] == s["scored"] == 0
    assert s["partitions_written"] == s["partitions_purged"] == [DAYS[0]] and s["partitions_waiting_for_deletes"] == 0
    assert s["rows_deleted"] == len(late) and s["reconciled"]
    after = table(out)
    assert not late & set(after["tweet_id"]) and len(after) == rows - len(late)
    assert nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1])["noop"] is True


def test_late_file_rescores_its_day(spark, archive, tiny_artifact, tmp_path):
    from bench.make_archive import generate

    arch = tmp_path / "arch"
    shutil.copytree(archive, arch)
    out = tmp_path / "out"
    nightly(spark, arch, tiny_artifact, out)
    before = table(out)
    extra = tmp_path / "extra"
    generate(extra, days=1, tweets_per_day=40, start=DAYS[0], seed=99, files_per_day=1)
    late = arch / "2021" / "01" / "01" / "23" / "59.json.bz2"
    late.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(extra.rglob("*.json.bz2")), late)
    s = nightly(spark, arch, tiny_artifact, out, "--date", DAYS[0])
    assert s["files_new"] == 1 and DAYS[0] in s["partitions_written"]
    after = table(out)
    assert set(before["tweet_id"]) <= set(after["tweet_id"])  # nothing lost
    assert len(after) > len(before)
    clean_out = tmp_path / "clean"
    nightly(spark, arch, tiny_artifact, clean_out)
    assert_same_table(after, table(clean_out))


@pytest.mark.parametrize("fault", ["before_commit", "mid_commit", "after_manifest"])
def test_killed_run_leaves_readable_state_and_recovers(spark, archive, tiny_artifact, tmp_path, clean, fault):
    out = tmp_path / "out"
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    day1 = table(out)
    env = {**os.environ, "TWEET_SENTIMENT_FAULT": fault, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "jobs.nightly", "--archive-root", str(archive), "--model", str(tiny_artifact),
           "--output", str(out)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == -9, res.stderr[-3000:]
    # the killed run left a readable table: the previous state or, past the commit point, the new one
    state = table(out)
    if fault == "before_commit":  # not committed: exactly the previous state
        assert_same_table(state, day1)
    elif fault == "after_manifest":  # every partition moved already
        assert_same_table(state, clean)
    else:  # mid-commit: each partition is whole (old or new), none missing
        assert set(day1["dt"]) <= set(state["dt"])
        for d, rows in state.groupby("dt"):
            ids = set(rows["tweet_id"])
            assert ids == set(day1[day1["dt"] == d]["tweet_id"]) or ids == set(clean[clean["dt"] == d]["tweet_id"])
    assert not state.duplicated(["model_version", "dt", "tweet_id"]).any()
    s = nightly(spark, archive, tiny_artifact, out)
    if fault == "before_commit":
        assert s["files_new"] == 4 and not s["recovered_runs"]
    else:
        assert s["recovered_runs"] and s["noop"]
    assert_same_table(table(out), clean)
    assert not any((out / "_staging").iterdir()) and not any((out / "_journal").iterdir())


def test_new_model_version_alongside_the_old(spark, archive, tiny_artifact, tmp_path):
    out = tmp_path / "out"
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    v2 = tmp_path / "v2"
    shutil.copytree(tiny_artifact, v2)
    meta = json.loads((v2 / "metadata.json").read_text())
    (v2 / "metadata.json").write_text(json.dumps({**meta, "model_version": meta["model_version"] + "-v2"}))
    s = nightly(spark, archive, v2, out, "--date", DAYS[0])
    assert s["noop"], "a new version does not silently re-score history"
    s = nightly(spark, archive, v2, out, "--date", DAYS[0], "--rescore")
    assert s["files_new"] == 2
    t = table(out)
    versions = t.groupby("model_version")["tweet_id"].apply(set)
    assert len(versions) == 2 and versions.iloc[0] == versions.iloc[1]
    assert sorted(p.name for p in (out / "scores").iterdir()) == sorted(
        f"model_version={v}" for v in (meta["model_version"], meta["model_version"] + "-v2"))


@pytest.mark.parametrize("same_run", [False, True])
def test_a_tweet_in_two_files_survives_the_redelivery_of_the_file_whose_row_was_kept(
        spark, archive, tiny_artifact, tmp_path, same_run):
    """Tweets of a day-1 file also lie in a day-2 file (the stream delivered them twice). One row
    per id is published, the first by file; the other is set aside, not dropped, so that when the
    day-1 file is re-delivered without those tweets they stay, from the day-2 file, as a clean run
    over the final archive has them."""
    arch = tmp_path / "arch"
    shutil.copytree(archive, arch)
    first = sorted((arch / "2021" / "01" / "01").rglob("*.json.bz2"))[0]
    lines = bz2.open(first, "rt").read().splitlines()
    twice = [line for line in lines if '"delete"' not in line][:5]
    second = arch / "2021" / "01" / "02" / "00" / "00.json.bz2"
    second.parent.mkdir(parents=True, exist_ok=True)
    second.write_bytes(bz2.compress(("\n".join(twice) + "\n").encode()))
    out = tmp_path / "out"
    if same_run:
        nightly(spark, arch, tiny_artifact, out, "--from", DAYS[0], "--to", DAYS[1])
    else:
        nightly(spark, arch, tiny_artifact, out, "--date", DAYS[0])
        s = nightly(spark, arch, tiny_artifact, out, "--date", DAYS[1])
        assert s["rows_set_aside_in_partitions_written"] == 5
    ids = {json.loads(line)["id_str"] for line in twice}
    published = table(out)
    assert set(published.loc[published["tweet_id"].isin(ids), "source_file"]) == {str(first)}
    first.write_bytes(bz2.compress(("\n".join(line for line in lines if line not in twice) + "\n").encode()))
    os.utime(first, (1, 1))  # re-delivered: another size and time
    s = nightly(spark, arch, tiny_artifact, out, "--from", DAYS[0], "--to", DAYS[1])
    assert s["files_changed"] == 1 and s["reconciled"]
    after = table(out)
    assert set(after.loc[after["tweet_id"].isin(ids), "source_file"]) == {str(second)}
    clean_out = tmp_path / "clean"
    nightly(spark, arch, tiny_artifact, clean_out, "--from", DAYS[0], "--to", DAYS[1])
    assert_same_table(after, table(clean_out))


def test_notices_a_new_version_reads_reach_the_old_versions_partitions(spark, archive, tiny_artifact, tmp_path):
    """Version 1 scores day 1, then version 2 takes over the later days, whose notices delete day-1
    tweets: those wait for version 1's partition (recorded for it), and the scores view leaves
    them out for both versions, as it would had version 1 gone on."""
    from sentiment_core.tables import pending_deletes, read_table

    day1_ids = {t["id_str"] for t in archive_lines(archive, DAYS[0]) if "delete" not in t}
    late = {t["delete"]["status"]["id_str"] for day in DAYS[1:] for t in archive_lines(archive, day)
            if "delete" in t and t["delete"]["status"]["id_str"] in day1_ids}
    assert late
    out = tmp_path / "out"
    nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
    old_version = json.loads((tiny_artifact / "metadata.json").read_text())["model_version"]
    v2 = tmp_path / "v2"
    shutil.copytree(tiny_artifact, v2)
    (v2 / "metadata.json").write_text(json.dumps({**json.loads((v2 / "metadata.json").read_text()),
                                                  "model_version": old_version + "-v2"}))
    s = nightly(spark, archive, v2, out, "--from", DAYS[1], "--to", DAYS[2])
    assert s["other_versions_partitions_waiting_for_deletes"] == 1
    assert list(pending_deletes(str(out), old_version)) == [DAYS[0]]
    assert late <= set(table(out).query("model_version == @old_version")["tweet_id"])  # still in the files
    view = read_table(spark, str(out), "scores").where(f"model_version = '{old_version}'")
    assert not late & {r["tweet_id"] for r in view.select("tweet_id").collect()}
    # version 1 no longer scores new files (version 2 has them): run again, it purges its partition
    s = nightly(spark, archive, tiny_artifact, out, "--from", DAYS[1], "--to", DAYS[2])
    assert s["files_new"] == 0 and s["scored"] == 0 and s["partitions_purged"] == [DAYS[0]] and s["reconciled"]
    assert pending_deletes(str(out), old_version) == {}
    assert not late & set(table(out).query("model_version == @old_version")["tweet_id"])


@contextlib.contextmanager
def default_file_system(spark, uri: str):
    """The session's Hadoop default file system set to ``uri`` (a YARN cluster's HDFS), where a
    bare path would go; no retries, so a path sent there fails at once."""
    settings = {"fs.defaultFS": uri, "ipc.client.connect.max.retries": "0",
                "ipc.client.connect.max.retries.on.timeouts": "0"}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k in settings:
            spark.conf.unset(k)


def test_the_jobs_use_local_paths_where_the_default_file_system_is_hdfs(spark, archive, tiny_artifact, tmp_path):
    """On YARN a bare path means HDFS. The jobs' outputs are local paths that the driver and the
    executors share (the driver writes markers and swaps partitions itself), so every path the jobs
    hand to Spark is a file: URI: nightly (merge, deletes, compaction), score (Parquet in and
    out), the tables and a query's export all run with an unreachable HDFS as the default."""
    from jobs import query, score
    from sentiment_core.tables import read_table

    out, scored, exported = tmp_path / "nightly", tmp_path / "score", tmp_path / "export"
    with default_file_system(spark, "hdfs://127.0.0.1:1"):
        nightly(spark, archive, tiny_artifact, out, "--date", DAYS[0])
        s = nightly(spark, archive, tiny_artifact, out, "--date", DAYS[1])
        assert s["reconciled"] and s["partitions_purged"] == [DAYS[0]]
        first = score.run(score.parse_args(["--input", str(archive / "2021"), "--model", str(tiny_artifact),
                                            "--output", str(scored), "--include-text"]), spark=spark)
        again = score.run(score.parse_args(["--input", str(scored / "scores"), "--format", "parquet", "--model",
                                            str(tiny_artifact), "--output", str(tmp_path / "rescored")]), spark=spark)
        assert first["reconciled"] and again["reconciled"] and again["scored"] == first["scored"]
        assert read_table(spark, str(out), "scores").count() == len(table(out))
        assert query.main(["--output", str(out), "sql", "SELECT tweet_id FROM scores", "--out-dir", str(exported),
                           "--format", "parquet"], spark=spark) == 0
    assert len(pd.read_parquet(exported)) == len(table(out))


def test_an_archive_root_behind_a_uri_is_listed_through_its_file_system(spark, archive, tiny_artifact, tmp_path,
                                                                         monkeypatch):
    """--archive-root hdfs://... or s3://...: the driver lists the archive through pyarrow's file
    systems (sizes and modification times from the listing, for the manifest), without listing
    the folders of other days. A file: URI listed that way here gives the nights of the local
    root, and a second run finds nothing new."""
    from sentiment_core import readers

    out_local, out_uri = tmp_path / "local", tmp_path / "uri"
    nightly(spark, archive, tiny_artifact, out_local, "--date", DAYS[0])
    monkeypatch.setattr(readers, "_local_path", lambda p: None if "://" in p else p)  # the driver's listing only
    seen = []  # what the listings returned, relative to the root
    real_filesystem = readers._filesystem

    class Recording:  # the file system, with what its listings return recorded
        def __init__(self, uri):
            self.fs, self.base = real_filesystem(uri)

        def get_file_info(self, what):
            got = self.fs.get_file_info(what)
            if hasattr(what, "base_dir"):
                seen.extend(os.path.relpath(e.path, self.base) for e in got)
            return got

    monkeypatch.setattr(readers, "_filesystem", lambda uri: ((r := Recording(uri)), r.base))
    uri = archive.as_uri()
    files = discover_day(uri)
    day_dir = lambda rel: "/".join(Path(rel).parts[:3])  # noqa: E731 - YYYY/MM/DD of the grab
    other_days = {day_dir(p.relative_to(archive)) for p in archive.rglob("*.json*")} - {day_dir(r) for r in files}
    assert other_days and seen
    assert not any(f.startswith(d + "/") for f in seen for d in other_days), seen  # their folders never listed
    assert files and all(e["path"].startswith(uri + "/") and e["size"] > 0 and e["mtime"] > 0 for e in files.values())
    assert {r: (e["size"], e["date"]) for r, e in files.items()} == \
        {r: (e["size"], e["date"]) for r, e in discover_day(str(archive)).items()}
    s = nightly(spark, uri, tiny_artifact, out_uri, "--date", DAYS[0])
    assert s["reconciled"] and s["files_new"] > 0
    assert nightly(spark, uri, tiny_artifact, out_uri, "--date", DAYS[0])["noop"] is True
    key = ["model_version", "tweet_id", "score", "label", "dt"]
    pd.testing.assert_frame_equal(table(out_uri)[key], table(out_local)[key])


def discover_day(root):
    from jobs import nightly as N

    return N.discover(root, "auto", DAYS[0], DAYS[0])
