"""Nightly incremental sentiment over a growing tweet archive.

    spark-submit jobs/nightly.py --archive-root ROOT --model ARTIFACT --output DIR [--date D | --from D --to D]
    python -m jobs.nightly ...

Each run scores only the archive files that are new or changed since the last run for this
model version (a manifest in the output records path, size and mtime of every file scored, by
which run, into which ``dt`` partitions), merges them into the affected partitions, removes
tweets named by delete notices (also ones that arrive days after the tweet: a tweet id is a
Snowflake id, so the notice names the partition to fix; ``--max-purges N`` rewrites at most N
such earlier partitions per run and leaves the rest waiting, recorded, for later runs), and
publishes everything with a journaled commit (``sentiment_core.commit``): a run killed at any
point leaves the previous state readable and the next run finishes or discards its work. Running
the same night twice is a no-op, unless partitions wait for deletes: a run with nothing to score
purges those (up to ``--max-purges``), so deleted tweets leave the files of a version whose archive
stopped growing, or that another version took over, when it is run again.

Archive layouts (``--layout auto`` detects): the Internet Archive grab ``YYYY/MM/DD/HH/MM.json.bz2``
or its day files as downloaded (``twitter-stream-YYYY-MM-DD.tar``, read member by member),
``dt=YYYY-MM-DD/`` folders, or flat folders (every file is a candidate; date flags do not apply);
a local or mounted folder, or an ``hdfs://``, ``s3://``, ``gs://`` URI (listed whole through pyarrow).

Output (besides the score job's ``scores/model_version=V/dt=D/``): ``deletes/target_month=YYYY-MM/``
(by the month the deleted tweet was posted), ``rejects/run_id=R/``, ``run_log/`` (one row per run),
``runs/R.json``, ``_manifest/V/<day>.json`` (the manifest, one shard per archive day: a night reads
and writes only its own days' shards).
A new model version (``--model`` of another artifact) scores only files no version has scored
yet, unless ``--rescore`` asks it to score the selected history too; versions never share a
partition.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jobs.score import MARKER, count_records, files_with_records, prepare_tweets, score_tweets, write_side_table
from sentiment_core import readers
from sentiment_core.readers import TAR_MEMBER_SEP
from sentiment_core.scorer import BACKENDS, resolve_backend
from sentiment_core import commit as C
from sentiment_core.storage import LocalDir, spark_path
from sentiment_core.tables import MANIFEST, PENDING_DELETES, pending_deletes  # beside the manifest shards

log = logging.getLogger("jobs.nightly")

LAYOUTS = ("auto", "grab", "dt", "flat")
SNOWFLAKE_EPOCH_MS = 1288834974657
# duplicates/model_version=V/dt=D/: scored rows of tweet ids that another archive file also holds,
# set aside by the merge (one row per id is published, the first by file); kept so that the id
# stays when the file whose row was published is re-delivered without it
DUPLICATES = "duplicates"
FIRST_SNOWFLAKE_ID = 29_700_859_247  # ids below this are sequential (pre Nov 2010) and carry no time
_GRAB = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
# the grab's day files as downloaded: twitter-stream-2021-01-01.tar, twitter_stream_2021_01_01.tar
_GRAB_TAR = re.compile(r"(?:^|/)[^/]*?(\d{4})[-_](\d{2})[-_](\d{2})\.tar$", re.IGNORECASE)
_DTDIR = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")
# directory names that bound the days beneath them: dt=YYYY-MM-DD, and the grab's YYYY[/MM[/DD]]
_DT_NAME = re.compile(r"dt=([0-9]{4}-[0-9]{2}-[0-9]{2})")
_GRAB_DIR = re.compile(r"(?:^|/)([0-9]{4})(?:/([0-9]{2})(?:/([0-9]{2}))?)?$")
UNDATED = "undated"  # the manifest shard of files whose path names no day (a flat archive)
DELETE_FILES_PER_MONTH = 32  # more in a deletes/target_month=M/ that a run reads: compacted into one


@dataclass(frozen=True)
class NightlyConfig:
    archive_root: str = field(metadata={"help": "root of the tweet archive"})
    model: str = field(metadata={"help": "model artifact directory"})
    output: str = field(metadata={"help": "output directory (tables + manifest)"})
    date_from: str | None = None
    date_to: str | None = None
    layout: str = "auto"
    rescore: bool = False
    lang: tuple[str, ...] = ()
    include_text: bool = False
    batch_size: int | None = None
    backend: str = "auto"
    partitions: int = 0
    files_per_task: int = 4
    max_purges: int | None = None  # older partitions rewritten for new delete notices per run (None: all)

    def __post_init__(self):
        if self.max_purges is not None and self.max_purges < 0:
            raise ValueError("--max-purges must be >= 0")
        if self.layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {LAYOUTS}")
        for d in (self.date_from, self.date_to):
            if d is not None:
                try:
                    dt.date.fromisoformat(d)
                except ValueError:
                    raise ValueError(f"dates are YYYY-MM-DD, got {d!r}") from None
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"--from {self.date_from} is after --to {self.date_to}")


def parse_args(argv=None) -> NightlyConfig:
    p = argparse.ArgumentParser(prog="jobs/nightly.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--archive-root", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--output", required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--date", help="one archive day, YYYY-MM-DD")
    g.add_argument("--from", dest="date_from", help="first archive day")
    p.add_argument("--to", dest="date_to", help="last archive day")
    p.add_argument("--layout", default="auto", choices=LAYOUTS)
    p.add_argument("--rescore", action="store_true", help="score the selected history again with this model version")
    p.add_argument("--lang", nargs="+", action="extend", default=[])
    p.add_argument("--include-text", action="store_true")
    p.add_argument("--batch-size", type=int, default=None, help="as in jobs/score.py")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="model runtime, as in jobs/score.py")
    p.add_argument("--partitions", type=int, default=0)
    p.add_argument("--files-per-task", type=int, default=4)
    p.add_argument("--max-purges", type=int, default=None,
                   help="rewrite at most N partitions of earlier days per run to remove tweets that new delete notices "
                        "name (oldest waiting first); the rest wait for later runs (default: all of them, every run)")
    ns = vars(p.parse_args(argv))
    day = ns.pop("date")
    if day:
        ns["date_from"] = ns["date_to"] = day
    ns["lang"] = tuple(ns["lang"])
    return NightlyConfig(**ns)


def file_date(rel: str, layout: str) -> str | None:
    if layout in ("grab", "auto"):
        m = _GRAB.search(rel) or _GRAB_TAR.search(rel)
        if m:
            return f"{m[1]}-{m[2]}-{m[3]}"
    if layout in ("dt", "auto"):
        m = _DTDIR.search("/" + rel)
        if m:
            return m[1]
    return None


def manifest_shard(rel: str) -> str:
    """The manifest shard of an archive file: the day its path names (by the grab's or the ``dt=``
    pattern, whatever ``--layout`` says, so a file stays in one shard), else ``undated``."""
    return file_date(rel, "auto") or UNDATED


def _dir_days(rel_dir: str, layout: str) -> tuple[str, str] | None:
    """The first and last day a directory of the archive can hold by its name (a grab ``YYYY``,
    ``YYYY/MM`` or ``YYYY/MM/DD``, or a ``dt=YYYY-MM-DD``), or None where its name says nothing."""
    if layout in ("dt", "auto") and (m := _DT_NAME.fullmatch(os.path.basename(rel_dir))):
        return m[1], m[1]
    if layout in ("grab", "auto") and (m := _GRAB_DIR.search(rel_dir)):
        y, mo, d = m[1], m[2], m[3]
        if d:
            return f"{y}-{mo}-{d}", f"{y}-{mo}-{d}"
        return (f"{y}-{mo}-01", f"{y}-{mo}-31") if mo else (f"{y}-01-01", f"{y}-12-31")
    return None


def discover(root: str, layout: str, date_from: str | None, date_to: str | None,
             skipped: list[str] | None = None) -> dict[str, dict]:
    """Archive files in the date range: relative path -> {path, size, mtime, date}. With a date
    range, directories whose names put them outside it (another day, month or year of the grab,
    another ``dt=`` folder) are not walked, so a night lists its own days, not the archive's
    history (1,440 minute files a day in the grab). ``skipped`` (optional) gets the files that
    are not tweet data by their names (an Internet Archive item's metadata, a README: ``readers.not_data``)."""
    local = readers._local_path(root)
    if local is not None:
        if not os.path.isdir(local):
            raise FileNotFoundError(f"--archive-root {root} is not a directory")
        root = os.path.abspath(local)  # source_file values stay the same whichever way the root is spelled
    else:  # hdfs://, s3://, gs://: listed through pyarrow's file systems, a folder at a time
        root = root.rstrip("/")

    def outside(rel_dir: str) -> bool:
        days = _dir_days(rel_dir, layout)
        return days is not None and bool((date_to and days[0] > date_to) or (date_from and days[1] < date_from))

    ranged = layout != "flat" and bool(date_from or date_to)
    out = {}
    listed = readers.list_input_files([root], skip_dir=outside if ranged else None)
    if local is None and list(listed) == [root]:
        raise FileNotFoundError(f"--archive-root {root} is a file, not a directory")
    if skipped is not None:
        skipped.extend(listed.skipped)
    for path in listed:
        rel = os.path.relpath(path, root) if local is not None else path[len(root):].lstrip("/")
        day = file_date(rel, layout)
        if layout in ("grab", "dt") and day is None:
            continue  # not part of this layout (e.g. a README beside the archive)
        if day is not None and ((date_from and day < date_from) or (date_to and day > date_to)):
            continue
        if local is not None:
            st = os.stat(path)
            size, mtime = st.st_size, int(st.st_mtime_ns // 1_000_000)
        else:
            size, mtime = listed.sizes[path], listed.mtimes[path]
        out[rel] = {"path": path, "size": size, "mtime": mtime, "date": day}
    return out


def load_manifests(out: Path, shards: set[str]) -> dict[str, dict[str, dict]]:
    """Every model version's manifest entries in ``shards`` (``_manifest/<version>/<shard>.json``):
    version -> shard -> {relative path: entry}. A night reads the shards of its own days, so its
    cost does not grow with the archive's history. A manifest of the earlier layout, one file per
    version (``_manifest/<version>.json``), is split into shards first."""
    d = out / MANIFEST
    if not d.exists():
        return {}
    for legacy in sorted(d.glob("*.json")):
        _split_manifest(d, legacy)
    found: dict[str, dict[str, dict]] = {}
    for vdir in sorted(p for p in d.iterdir() if p.is_dir()):
        found[vdir.name] = {s: json.loads((vdir / f"{s}.json").read_text())["files"]
                            for s in sorted(shards) if (vdir / f"{s}.json").exists()}
    return found


def _split_manifest(d: Path, legacy: Path) -> None:
    """One version's single manifest file -> its shards, then the file is removed (a run killed
    midway splits it again: the shards are written whole, each atomically)."""
    doc = json.loads(legacy.read_text())
    version = doc.get("model_version", legacy.stem)
    by_shard: dict[str, dict] = {}
    for rel, entry in doc.get("files", {}).items():
        by_shard.setdefault(manifest_shard(rel), {})[rel] = entry
    for shard, files in by_shard.items():
        C.write_json_atomic(d / version / f"{shard}.json", _shard_doc(version, shard, files, doc.get("updated_at")))
    legacy.unlink()
    log.info("manifest of model version %s split into %d shards by archive day", version, len(by_shard))


def _shard_doc(version: str, shard: str, files: dict, updated_at) -> dict:
    return {"model_version": version, "shard": shard, "files": dict(sorted(files.items())), "updated_at": updated_at}


def _stamp(e: dict) -> tuple:
    return e["size"], e["mtime"]


def plan(files: dict, manifests: dict, version: str, rescore: bool) -> tuple[list[str], list[str]]:
    """(new, changed) relative paths for this version (``manifests`` as :func:`load_manifests` gives them)."""
    own = {rel: e for shard in manifests.get(version, {}).values() for rel, e in shard.items()}
    others = {rel: e for v, m in manifests.items() if v != version for shard in m.values() for rel, e in shard.items()}
    changed = [r for r, e in files.items() if r in own and _stamp(own[r]) != _stamp(e)]
    new = [r for r, e in files.items() if r not in own and
           (rescore or r not in others or _stamp(others[r]) != _stamp(e))]
    return sorted(new), sorted(changed)


def snowflake_dt(col):
    """The UTC date a Snowflake tweet id was minted, or null for older sequential ids."""
    from pyspark.sql import functions as F

    n = col.cast("long")
    return F.when(n >= FIRST_SNOWFLAKE_ID,
                  F.to_date(F.timestamp_millis(F.shiftright(n, 22) + F.lit(SNOWFLAKE_EPOCH_MS))))


def _check_output(out: Path) -> None:
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        if not marker.exists():
            raise ValueError(f"--output {out} is not empty and is not an output of this job; choose another directory")
        if json.loads(marker.read_text()).get("written_by") != "tweet-sentiment jobs.nightly":
            raise ValueError(f"--output {out} was written by jobs.score; the nightly job keeps its own output "
                             "directory (it needs its manifest): choose another one")


def _metadata_writer(out: Path):
    def on_metadata(journal: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        version = journal["model_version"]
        for shard, doc in journal.get("manifest_shards", {}).items():  # the shards of the run's files
            C.write_json_atomic(out / MANIFEST / version / f"{shard}.json", doc)
        if journal.get("pending_deletes"):
            C.write_json_atomic(out / MANIFEST / version / PENDING_DELETES, journal["pending_deletes"])
        elif "pending_deletes" in journal:  # none waits any more
            (out / MANIFEST / version / PENDING_DELETES).unlink(missing_ok=True)
        for other, waiting in journal.get("pending_deletes_of_other_versions", {}).items():
            C.write_json_atomic(out / MANIFEST / other / PENDING_DELETES, waiting)
        if "manifest" in journal:  # a journal of the one-file manifest: load_manifests splits it
            C.write_json_atomic(out / MANIFEST / f"{version}.json", journal["manifest"])
        C.fault_point("after_manifest")
        s = journal["summary"]
        (out / "runs").mkdir(exist_ok=True)
        C.write_json_atomic(out / "runs" / f"{s['run_id']}.json", s)
        row = {k: s.get(k) for k in RUN_LOG_COLUMNS}
        row["partitions_written"] = ",".join(s.get("partitions_written", []))
        (out / "run_log").mkdir(exist_ok=True)
        tmp = out / "run_log" / f".{s['run_id']}.parquet.tmp"
        pq.write_table(pa.Table.from_pylist([row]), tmp)
        os.replace(tmp, out / "run_log" / f"{s['run_id']}.parquet")
    return on_metadata


RUN_LOG_COLUMNS = ["run_id", "job", "model_version", "started_at", "wall_seconds", "noop", "files_new",
                   "files_changed", "records_read", "tweets_read", "scored", "rejected", "delete_notices",
                   "rows_deleted", "filtered_lang", "filtered_duplicate", "rows_in_partitions",
                   "partitions_written", "tweets_per_second", "recovered_runs"]


def run(cfg: NightlyConfig, spark=None) -> dict:
    from pyspark import StorageLevel
    from pyspark.sql import Observation, Window
    from pyspark.sql import functions as F

    from sentiment_core.artifact import load_metadata
    from sentiment_core.spark import RECORD_DDL, get_session, input_file, read_records, scoring_partitions

    t0 = time.perf_counter()
    meta = load_metadata(cfg.model)
    if cfg.backend != "auto":
        resolve_backend(meta, cfg.backend)  # an explicit backend the artifact lacks: fail before Spark
    version = meta["model_version"]
    local = readers._local_path(cfg.output)  # a plain path or a file: URI
    if local is None:
        raise ValueError(f"--output {cfg.output}: the nightly job's output is a local or mounted directory (it "
                         "swaps partitions in place and keeps its manifest there); jobs.score writes to URIs")
    out = Path(local)
    _check_output(out)
    skipped: list[str] = []
    files = discover(cfg.archive_root, cfg.layout, cfg.date_from, cfg.date_to, skipped)
    if skipped:
        log.warning("skipped %d file(s) that hold no tweets by their names (archive metadata, READMEs, "
                    "checksums): %s", len(skipped), ", ".join(os.path.relpath(f, cfg.archive_root) for f in skipped[:10]))
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"written_by": "tweet-sentiment jobs.nightly", "layout": 1}))
    on_metadata = _metadata_writer(out)
    recovered = C.recover(out, on_metadata)
    manifests = load_manifests(out, {manifest_shard(r) for r in files})
    new, changed = plan(files, manifests, version, cfg.rescore)
    started = dt.datetime.now(dt.timezone.utc)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    base = {"run_id": run_id, "job": "nightly", "model_version": version, "started_at": started.isoformat(),
            "archive_root": cfg.archive_root, "date_from": cfg.date_from, "date_to": cfg.date_to,
            "files_in_range": len(files), "files_skipped": len(skipped), "files_new": len(new),
            "files_changed": len(changed),
            "recovered_runs": ",".join(recovered), "config": dataclasses.asdict(cfg)}
    own = manifests.get(version, {})  # shard -> {relative path: entry}
    waiting = pending_deletes(str(out), version)  # partitions whose delete notices are not yet applied
    # nothing to score: the run still purges the partitions that wait for deletes (up to
    # --max-purges), or tweets deleted at the source would stay in the files of a version whose
    # archive stopped growing or that no longer scores new files (another version took over)
    if not new and not changed and (not waiting or cfg.max_purges == 0):
        summary = {**base, "noop": True, "message": "nothing new or changed since the last run for this model version",
                   "partitions_waiting_for_deletes": len(waiting),
                   "records_read": 0, "scored": 0, "rejected": 0, "delete_notices": 0, "rows_deleted": 0,
                   "partitions_written": [], "wall_seconds": round(time.perf_counter() - t0, 3)}
        C.commit(out, {"run_id": run_id, "model_version": version, "moves": [], "summary": summary}, on_metadata)
        return summary

    own_session = spark is None
    spark = spark or get_session("tweet-sentiment-nightly")
    stage_rel = Path(C.STAGING) / run_id
    stage = out / stage_rel
    vdir_rel = Path("scores") / f"model_version={version}"
    dups_rel = Path(DUPLICATES) / f"model_version={version}"
    try:
        todo = [files[r]["path"] for r in new + changed]
        parse_plan: dict = {}
        # a purge-only run (no file to score) goes through the same steps with no records
        records = (read_records(spark, todo, "auto", None, cfg.files_per_task, plan=parse_plan) if todo else
                   spark.createDataFrame([], RECORD_DDL)).persist(StorageLevel.MEMORY_AND_DISK)
        counts = count_records(records, cfg.lang, files=len(todo))
        counts["files_with_records"] = files_with_records(records, counts)
        log.info("run %s: %d new + %d changed files: %s", run_id, len(new), len(changed), counts)
        artifact = meta["path"]
        partitions = cfg.partitions or scoring_partitions(counts["to_score"], spark.sparkContext.defaultParallelism)
        written = Observation(f"written-{run_id}")
        # every tweet is scored, repeated ids too: the merge below keeps one row per id and sets the
        # others aside (DUPLICATES), so that the id survives when the file whose row won is
        # re-delivered without it
        tweets = prepare_tweets(records, cfg.lang, duplicates=False)
        scored = score_tweets(tweets, artifact, cfg.batch_size, partitions, version, run_id, cfg.include_text,
                              cfg.backend, observation=written).drop("model_version")
        t_score = time.perf_counter()
        scored.write.mode("overwrite").partitionBy("dt").parquet(spark_path(stage / "new"))
        score_seconds = time.perf_counter() - t_score
        (records.where(F.col("kind") == "delete")
         .select("tweet_id", "user_id", "deleted_at", "source_file", F.date_format(snowflake_dt(F.col("tweet_id")), "yyyy-MM").alias("target_month"))
         .repartition("target_month")  # one file per month and run: the months read later hold fewer files
         .write.mode("overwrite").partitionBy("target_month").parquet(spark_path(stage / "deletes")))
        write_side_table(records.where(F.col("kind") == "reject").select("raw", "source_file", "line_no", "reason", "detected_at"),
                         counts["rejected"], LocalDir(stage), "rejects")
        records.unpersist()
        check = written.get

        new_rows = _read_or_empty(spark, stage / "new", scored.schema)
        run_deletes = _read_or_empty(spark, stage / "deletes", "tweet_id string, user_id string, deleted_at timestamp, "
                                                              "source_file string, target_month string")
        new_dts = {str(r["dt"]) for r in new_rows.select("dt").distinct().collect()}
        del_dts = {str(r["dt"]) for r in run_deletes.select(snowflake_dt(F.col("tweet_id")).alias("dt")).distinct().collect()
                   if r["dt"]}
        existing = {p.name[3:] for p in (out / vdir_rel).glob("dt=*")} if (out / vdir_rel).exists() else set()
        old_dts = {d for r in changed for d in own[manifest_shard(r)][r].get("dts", [])}
        # rewritten anyway (new rows, a changed file's old rows): every known delete applies there
        must = new_dts | (old_dts & existing)
        # earlier days that delete notices name, this run's or waiting since an earlier one: the
        # stream deletes tweets of any age (one real minute's 307 notices name 123 different days),
        # so without a bound every run would rewrite nearly every partition of the history
        purge = sorted(((del_dts | set(waiting)) & existing) - must, key=lambda d: (waiting.get(d, run_id), d))
        limit = len(purge) if cfg.max_purges is None else cfg.max_purges
        purged, deferred = purge[:limit], purge[limit:]
        pending = {d: waiting.get(d, run_id) for d in deferred}
        affected = sorted(must | set(purged))
        # the other model versions' partitions that this run's notices name: recorded as waiting
        # for their version's next run (the scores view leaves their tweets out meanwhile), since a
        # version that no longer runs would otherwise show deleted tweets for ever
        others_waiting = {}
        for vdir in sorted((out / "scores").glob("model_version=*")):
            other = vdir.name[len("model_version="):]
            hit = del_dts & {p.name[3:] for p in vdir.glob("dt=*")} if other != version else set()
            known = pending_deletes(str(out), other) if hit else {}
            if hit - set(known):
                others_waiting[other] = {**{d: run_id for d in hit}, **known}
        keep_old = [d for d in affected if d in existing]
        changed_paths = [files[r]["path"] for r in changed]

        merged = new_rows
        if keep_old:  # the affected days' rows, and the rows set aside there for ids another file's row won
            old_rows = (spark.read.option("basePath", spark_path(out / vdir_rel))
                        .parquet(*[spark_path(out / vdir_rel / f"dt={d}") for d in keep_old]).select(*new_rows.columns))
            aside_dirs = [spark_path(p) for d in keep_old if any((p := out / dups_rel / f"dt={d}").glob("*.parquet"))]
            if aside_dirs:
                old_rows = old_rows.unionByName(spark.read.option("basePath", spark_path(out / dups_rel))
                                                .parquet(*aside_dirs).select(*new_rows.columns))
            if changed_paths:  # a changed file's old rows; a day tar's rows name "<tar>!/<member>"
                old_rows = old_rows.where(~input_file().isin(changed_paths))
            merged = old_rows.unionByName(merged)
        # one row per id: the first by file, as one clean run over all the files keeps it
        w = Window.partitionBy("tweet_id").orderBy("source_file", "run_id", "score")
        ranked = merged.withColumn("_rn", F.row_number().over(w)).persist(StorageLevel.MEMORY_AND_DISK)
        merged = ranked.where("_rn = 1").drop("_rn")
        # every delete notice ever seen whose tweet falls in an affected partition (plus ids without a time)
        months = sorted({d[:7] for d in affected}) + ["__HIVE_DEFAULT_PARTITION__"]
        month_files = {m: list((out / "deletes" / f"target_month={m}").glob("*.parquet")) for m in months}
        del_paths = [spark_path(out / "deletes" / f"target_month={m}") for m in months if month_files[m]]
        deletes = run_deletes.select("tweet_id")
        if del_paths:
            deletes = deletes.unionByName(spark.read.parquet(*del_paths).select("tweet_id"))
        final = merged.join(deletes.distinct(), "tweet_id", "left_anti")
        # a month's notices arrive as one file per run that saw any (every run, for recent months):
        # a month read here that holds more than DELETE_FILES_PER_MONTH files is rewritten as one
        # file, this run's notices included, so reading it does not grow with the runs
        for m in months:
            month_dir = out / "deletes" / f"target_month={m}"
            if len(month_files[m]) > DELETE_FILES_PER_MONTH:
                ours = stage / "deletes" / month_dir.name
                (spark.read.parquet(*[spark_path(p) for p in (month_dir, ours) if p.exists()]).coalesce(1)
                 .write.parquet(spark_path(stage / "deletes_compacted" / month_dir.name)))
        before = merged.count()
        final.repartition("dt").write.mode("overwrite").partitionBy("dt").parquet(spark_path(stage / "scores"))
        after = spark.read.parquet(spark_path(stage / "scores")).count()
        aside = ranked.where("_rn > 1").drop("_rn").join(deletes.distinct(), "tweet_id", "left_anti")
        aside.repartition("dt").write.mode("overwrite").partitionBy("dt").parquet(spark_path(stage / DUPLICATES))
        for d in affected:  # an affected day without such rows any more: an empty one replaces the old
            (stage / DUPLICATES / f"dt={d}").mkdir(parents=True, exist_ok=True)
        set_aside = _count_or_zero(spark, stage / DUPLICATES)
        ranked.unpersist()
    finally:
        if own_session:
            spark.stop()

    moves = [("dir", str(stage_rel / "scores" / f"dt={d}"), str(vdir_rel / f"dt={d}")) for d in affected]
    moves += [("dir", str(stage_rel / DUPLICATES / f"dt={d}"), str(dups_rel / f"dt={d}")) for d in affected]
    compacted = sorted(p.name for p in (stage / "deletes_compacted").glob("target_month=*"))
    moves += [("dir", str(stage_rel / "deletes_compacted" / m), str(Path("deletes") / m)) for m in compacted]
    for f in sorted((stage / "deletes").glob("target_month=*/*.parquet")):
        if f.parent.name in compacted:  # in the compacted file already
            continue
        moves.append(("file", str(f.relative_to(out)), str(Path("deletes") / f.parent.name / f"{run_id}-{f.name}")))
    moves.append(("dir", str(stage_rel / "rejects"), str(Path("rejects") / f"run_id={run_id}")))
    file_dts = _dts_by_file(stage)
    touched: dict[str, dict] = {}  # the manifest shards of this run's files, whole
    for r in new + changed:
        e, shard = files[r], manifest_shard(r)
        entries = touched.setdefault(shard, dict(own.get(shard, {})))
        entries[r] = {"size": e["size"], "mtime": e["mtime"], "run_id": run_id, "dts": file_dts.get(e["path"], [])}
    updated_at = dt.datetime.now(dt.timezone.utc).isoformat()
    shard_docs = {shard: _shard_doc(version, shard, entries, updated_at) for shard, entries in touched.items()}
    wall = time.perf_counter() - t0
    summary = {**base, "noop": False, **counts, "scored": counts["to_score"], "rows_deleted": before - after,
               "rows_in_partitions": after, "rows_set_aside_in_partitions_written": set_aside,
               "partitions_written": affected, "partitions_purged": purged,
               "partitions_waiting_for_deletes": len(deferred),
               "other_versions_partitions_waiting_for_deletes": sum(len(w) for w in others_waiting.values()),
               "wall_seconds": round(wall, 3),
               "scoring_seconds": round(score_seconds, 3), "model_rows": int(check["model_rows"]),
               "tweets_per_second": round(counts["to_score"] / wall, 2) if wall else None, "parse": parse_plan}
    accounted = summary["scored"] + summary["rejected"] + summary["delete_notices"] + \
        summary["filtered_lang"] + summary["filtered_duplicate"]
    # the rows written are every kept tweet, repeated ids included (set aside by the merge)
    summary["reconciled"] = accounted == summary["records_read"] and \
        int(check["n"]) == counts["to_score"] + counts["filtered_duplicate"]
    if not summary["reconciled"]:
        raise RuntimeError(f"counts do not reconcile: {summary}")
    C.fault_point("before_commit")
    C.commit(out, {"run_id": run_id, "model_version": version, "moves": moves, "manifest_shards": shard_docs,
                   "pending_deletes": pending, "pending_deletes_of_other_versions": others_waiting,
                   "summary": summary}, on_metadata)
    return summary


def _count_or_zero(spark, path: Path) -> int:
    return spark.read.parquet(spark_path(path)).count() if any(path.rglob("*.parquet")) else 0


def _read_or_empty(spark, path: Path, schema):
    """A staged Parquet directory, or an empty frame when the run wrote no rows there."""
    if any(path.rglob("*.parquet")):
        return spark.read.parquet(spark_path(path))
    return spark.createDataFrame([], schema)


def _dts_by_file(stage: Path) -> dict[str, list[str]]:
    """input file -> the dt partitions its tweets went to (from the staged new rows; a day tar's
    members count for the tar). Distinct pairs in Arrow: a night holds millions of rows."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not any((stage / "new").rglob("*.parquet")):
        return {}
    t = ds.dataset(str(stage / "new"), format="parquet", partitioning="hive").to_table(columns=["source_file", "dt"])
    pairs = t.group_by(["source_file", "dt"]).aggregate([])
    files = pc.list_element(pc.split_pattern(pairs["source_file"], TAR_MEMBER_SEP, max_splits=1), 0)
    out: dict[str, set] = {}
    for f, d in zip(files.to_pylist(), pairs["dt"].to_pylist()):
        out.setdefault(f, set()).add(str(d))
    return {k: sorted(v) for k, v in out.items()}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # keep the summary the last line of stdout
    try:
        summary = run(parse_args(argv))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary["noop"]:
        log.info("no-op: %s", summary["message"])
    else:
        log.info("scored %d tweets from %d new + %d changed files into %s; %d rows deleted; %.1fs",
                 summary["scored"], summary["files_new"], summary["files_changed"], summary["partitions_written"],
                 summary["rows_deleted"], summary["wall_seconds"])
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
