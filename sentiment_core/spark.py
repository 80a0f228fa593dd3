"""The Spark side: the one session factory, the readers as Spark DataFrames, and the scoring UDF.

Transforms here are ``DataFrame -> DataFrame``; only :func:`read_records` touches paths. PySpark is
imported lazily so that the rest of ``sentiment_core`` stays importable without it.
"""
from __future__ import annotations

import itertools
import logging
import os
import pickle
import sys
from array import array
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import pandas as pd

from . import jvmcds, readers, schema
from .storage import spark_path

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 2048  # rows per Arrow batch into the scoring UDF (sorted + padded inside it)

# The internal record table: a reader's tweets, rejects and delete notices in one schema,
# told apart by ``kind``. ``line_no`` orders duplicates deterministically: a reject's 1-based line,
# for tweets and delete notices (whose reader records carry no line) their line * 65536 + their
# index among that line's records (a v2 page holds many), which grows in file order also when
# byte ranges of one file are parsed by different tasks.
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
        # the SQL shuffles (counts, a dedup, the nightly merge) of the data one machine holds: 8, not
        # Spark's 200 tiny tasks. A cluster keeps Spark's default (or a --conf), below
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
    }
    settings.update(conf or {})
    # spark-submit's --master/--conf (and PYSPARK_SUBMIT_ARGS) live in the JVM: join (or start) the
    # gateway before reading them, or the local default below would override a cluster's master
    launch = None if SparkContext._gateway is not None or os.environ.get("PYSPARK_GATEWAY_PORT") else jvmcds.launch_args()
    if launch is None:
        SparkContext._ensure_initialized()
    else:  # this process launches the driver JVM: with the class archive and quick JIT (sentiment_core.jvmcds)
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
    settings = for_master(settings, master, conf or {})
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


def for_master(settings: dict, master: str, conf: dict) -> dict:
    """``settings`` as they apply under ``master``: on a cluster, without Spark's SQL shuffle
    partitions of a local session (8), unless the caller's ``conf`` names them. A cluster's billions
    of rows in 8 shuffle partitions would be 8 tasks of hundreds of millions of rows each; adaptive
    execution coalesces small partitions but never splits these. There Spark's default (200) or
    the user's --conf applies."""
    if master.startswith("local") or "spark.sql.shuffle.partitions" in conf:
        return settings
    return {k: v for k, v in settings.items() if k != "spark.sql.shuffle.partitions"}


def input_file(source_file: str = "source_file"):
    """The input file of a record's ``source_file``: itself, or for an archive's member
    (``<archive>!/<member>``, ``readers.member_path``) the archive."""
    from pyspark.sql import functions as F

    return F.substring_index(source_file, readers.TAR_MEMBER_SEP, 1)


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


RECORDS_PER_LINE = 1 << 16  # the order key of a tweet / delete: line * RECORDS_PER_LINE + index in the line


class TaskItems:
    """Each task's work list, as it travels inside a Spark function: one bytes object of per-task
    pickles and their offsets, so a task unpickles only its own list. The function is unpickled
    by every task; held as Python objects, the 525,600 files of a year of the grab (131,400
    tasks) took each task 438 ms to unpickle, every task's list included, against 4.4 ms so
    (``bench/plan_pickle.py``)."""

    def __init__(self, tasks: Sequence):
        pieces = [pickle.dumps(list(t), protocol=pickle.HIGHEST_PROTOCOL) for t in tasks]
        self._offsets = array("q", itertools.accumulate(map(len, pieces), initial=0))
        self._blob = b"".join(pieces)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, task: int) -> list:
        return pickle.loads(self._blob[self._offsets[task]:self._offsets[task + 1]])


def parse_units(units: list[list[tuple]], chunk: int = 10_000, columns: tuple = (), decode_threads: int = 1):
    """mapInPandas body over ``spark.range(len(units))``: task ``i`` parses ``units[i]``, each a
    ``(path, fmt, byte_range or None, newlines_before, archive member or None)``, into record rows,
    streamed in chunks. ``columns``: (field, name) pairs for other tools' tweet objects
    (``readers.read_numbered``). ``decode_threads``: threads per bzip2 file (more than 1 only
    where the tasks leave cores idle)."""
    units = TaskItems(units)

    def parse(ids: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        readers.set_decode_threads(decode_threads)
        for batch in ids:
            for task in batch["id"]:
                for path, fmt, byte_range, newlines_before, member in units[task]:
                    buf: list[readers.Record] = []
                    last, index = 0, 0
                    for line_no, rec in readers.read_numbered(path, fmt, None, byte_range, newlines_before, member,
                                                              columns=columns):
                        if rec[0] != "reject":
                            index = index + 1 if line_no == last else 0
                            last = line_no
                            rec[1]["line_no"] = line_no * RECORDS_PER_LINE + min(index, RECORDS_PER_LINE - 1)
                        buf.append(rec)
                        if len(buf) >= chunk:
                            yield _records_frame(buf)
                            buf = []
                    if buf:
                        yield _records_frame(buf)
    return parse


def _count_ranges(ranges: list[list[tuple]]):
    """mapInPandas body over ``spark.range(len(ranges))``: the newlines in each (path, start, end)."""
    ranges = TaskItems(ranges)

    def count(ids: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in ids:
            rows = [(path, start, readers.count_newlines(path, start, end))
                    for task in batch["id"] for path, start, end in ranges[task]]
            yield pd.DataFrame(rows, columns=["path", "start", "newlines"])
    return count


# Splitting large plain files into byte ranges parsed by separate tasks: on by default.
SPLIT_FILES_CONF = "spark.tweet_sentiment.splitFiles"
# never cut into ranges: compressed (but bzip2, cut at its blocks), or a tar or zip (read member by member)
_UNCUT_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".xz", ".lzma", ".zip", ".tar")
_ARCHIVE_SUFFIXES = (".tar", ".zip")


def _size_or_zero(path: str) -> int:
    try:
        return readers.file_size(path)
    except (OSError, ValueError):  # read whole, where a file that cannot be read becomes a reject
        return 0


def _archive_members(path: str) -> list[tuple[str, int, int]] | None:
    """The members of an uncompressed tar (the Internet Archive grab's days, named ``*.tar``) or a
    zip (a dataset download, ``*.zip``), or None for any other file (a compressed tar, or an
    archive that cannot be listed, is read whole: one reject that says what to do)."""
    import tarfile
    import zipfile

    try:
        return readers.archive_members(path)
    except (OSError, ValueError, EOFError, tarfile.TarError, zipfile.BadZipFile):  # read whole: a reject says what it is
        return None


def _listings(pool, archives: Sequence[str], listings: dict) -> dict:
    """The member lists of ``archives`` (:func:`_archive_members`), read in ``pool`` where
    ``listings`` (a read's cache, filled here) does not hold them yet: one listing per archive and
    read, shared by the CSV table search and the parse plan."""
    todo = [p for p in archives if p not in listings]
    listings.update(zip(todo, pool.map(_archive_members, todo)))
    return {p: listings[p] for p in archives}


def _is_zip_listing(members: list[tuple[str, int, int]]) -> bool:
    return bool(members) and members[0][1] == readers.ZIP_MEMBER


def _range_bytes(spark, total: int) -> int:
    """The byte size a range of a large plain file is cut to, by Spark's own rule for its file
    sources: ``min(maxPartitionBytes, max(openCostInBytes, total / minPartitionNum))`` with
    ``spark.sql.files.*`` (so ``--conf spark.sql.files.maxPartitionBytes=...`` works here too)."""
    conf = spark._jsparkSession.sessionState().conf()
    min_parts = conf.filesMinPartitionNum()
    slots = min_parts.get() if min_parts.isDefined() else spark.sparkContext.defaultParallelism
    return int(min(conf.filesMaxPartitionBytes(), max(conf.filesOpenCostInBytes(), -(-total // max(1, slots)))))


def plan_parse(spark, files: Sequence[str], fmt: str, files_per_task: int,
               skip_members=frozenset(), listings: dict | None = None,
               known_sizes: dict[str, int] | None = None) -> tuple[list[list[tuple]], dict]:
    """The parse tasks for ``files`` (archive / CSV, not Parquet): each task a list of units
    ``(path, fmt, byte_range, newlines_before, archive member)`` (:func:`parse_units`). A plain (uncompressed) file larger than the range
    size (:func:`_range_bytes`) is cut into byte ranges, one task each, numbered from the newlines
    before them (one quick Spark job counts them); a bzip2 file is cut the same way at its blocks
    (each range reads the blocks whose magic lies in it), unnumbered after the first range
    (``readers.UNNUMBERED``): counting its lines would mean decompressing it twice. The members of
    an uncompressed ``*.tar`` or of a ``*.zip`` are units like files; other files go
    ``files_per_task`` to a task, and no slot stays idle while there are units. gzip, xz and zstd
    files cannot be cut: one unit each. ``skip_members``: the (archive, member name) read elsewhere
    (the CSV tables of a zip, :func:`read_csv_units`); ``listings``: the archive listings read
    already (:func:`_listings`); ``known_sizes``: file sizes known from the input listing
    (``readers.Listed``), not asked again."""
    slots = spark.sparkContext.defaultParallelism
    split = spark.conf.get(SPLIT_FILES_CONF, "true").lower() != "false"
    candidates = [p for p in files if not p.lower().endswith(_UNCUT_SUFFIXES)] if split else []
    archives = [p for p in files if p.lower().endswith(_ARCHIVE_SUFFIXES)]
    # behind a URI each size is a request, and a tar's listing one small read per member
    with ThreadPoolExecutor(16) as pool:
        known = dict(known_sizes or {})
        unknown = [p for p in candidates if p not in known]
        known.update(zip(unknown, pool.map(_size_or_zero, unknown)))
        sizes = {p: known[p] for p in candidates}
        members_of = _listings(pool, archives, {} if listings is None else listings)
    piece = _range_bytes(spark, sum(sizes.values())) if sizes else 0
    cut: dict[str, tuple[str, list[int]]] = {}
    bzip2: set[str] = set()
    for path, size in sizes.items():
        try:
            if size <= piece * 1.1:
                continue
            kind = readers.file_kind(path)
        except OSError:  # gone or unreadable: its parse task turns it into an unreadable_file reject
            continue
        if kind == "bzip2":
            bzip2.add(path)
        elif kind is not None:  # other compressions and archives: read whole
            continue
        _, document, detected = readers.sniff(path)
        if document:  # an array or pretty-printed JSON: read whole
            continue
        path_fmt = fmt if fmt != "auto" else detected
        if path_fmt is None:  # read whole: read_file rejects every line of it, as unknown_record
            continue
        k = -(-size // piece)
        cut[path] = (path_fmt, [size * i // k for i in range(k + 1)])
    newlines: dict[tuple[str, int], int] = {}
    to_count = [(p, b[i], b[i + 1]) for p, (_, b) in cut.items() if p not in bzip2 for i in range(len(b) - 2)]
    if to_count:
        m = min(len(to_count), slots)
        ranges = [to_count[i::m] for i in range(m)]
        for row in (spark.range(0, m, 1, m).mapInPandas(_count_ranges(ranges), "path string, start long, newlines long")
                    .collect()):
            newlines[(row["path"], row["start"])] = row["newlines"]
    tasks: list[list[tuple]] = []
    whole = []
    for path in files:
        if path in cut:
            path_fmt, bounds = cut[path]
            before = 0
            for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
                if path in bzip2:  # the lines before a block range are not counted
                    before = i * readers.UNNUMBERED
                tasks.append([(path, path_fmt, (start, end), before, None)])
                before += newlines.get((path, start), 0)
        elif (members := members_of.get(path)) is not None:  # each member like a file of its own
            whole.extend((path, fmt, None, 0, m) for m in members if (path, m[0]) not in skip_members)
        else:
            whole.append((path, fmt, None, 0, None))
    if whole:
        n = max(-(-len(whole) // max(1, files_per_task)), min(len(whole), max(1, slots - len(tasks))))
        tasks.extend(whole[i * len(whole) // n:(i + 1) * len(whole) // n] for i in range(n))
    stats = {"files": len(files), "split_files": len(cut), "split_bzip2_files": len(bzip2.intersection(cut)),
             "ranges": sum(len(b) - 1 for _, b in cut.values()),
             "range_bytes": piece, "tasks": len(tasks)}
    for kind in ("tar", "zip"):  # an archive's kind by its members: a zip's are opened by name
        listed = {p: m for p, m in members_of.items() if m is not None and (kind == "zip") == _is_zip_listing(m)}
        parsed = sum(1 for p, members in listed.items() for m in members if (p, m[0]) not in skip_members)
        stats.update({f"{kind}_files": len(listed), f"{kind}_members": parsed})  # the CSV tables counted apart
    return tasks, stats


ROWS_PER_SCORING_TASK = 20_000


def scoring_partitions(rows: int, slots: int) -> int:
    """Scoring tasks for ``rows`` tweets on ``slots`` concurrent task slots: about one per
    ROWS_PER_SCORING_TASK rows, rounded up to whole waves of ``slots`` tasks, so that no wave runs
    with idle slots (3 tasks on 2 slots ran the last third on one core: 0.8x the rate of 4)."""
    slots = max(1, slots)
    return -(-max(1, -(-rows // ROWS_PER_SCORING_TASK)) // slots) * slots


# CSV/TSV tweet tables, by name, plain or compressed, files or members of a zip download: read in
# Python (read_csv_units), where the readers' decompressors, URIs and archives apply
_CSV_SUFFIXES = tuple(f".{kind}{z}" for kind in ("csv", "tsv") for z in ("", ".gz", ".bz2", ".xz", ".zst", ".zstd"))


def _table_header(path: str, member: tuple[str, int, int] | None = None) -> str | None:
    """The header line of a CSV/TSV tweet table, or None for a file that is not one (Sentiment140's
    CSV, which has no header, any archive format, an empty or unreadable file)."""
    first, _, fmt = readers.sniff(path, member)
    return first if fmt is None else None


def _named_table(name: str) -> bool:
    return name.lower().endswith(_CSV_SUFFIXES)


def csv_tables(files: Sequence[str], required: bool = False, skip=frozenset(),
               listings: dict | None = None) -> dict[tuple, tuple[str, str]]:
    """The CSV/TSV tweet tables among ``files`` and the members of the ``*.zip`` among them (by name,
    ``*.csv`` / ``*.tsv``, plain or .gz / .bz2 / .xz / .zst, and a header line that no archive
    reader recognises), as ``{(path, zip member or None): (separator, header)}``. ``required``
    (``--format csv``): every file must be one. ``listings``: as in :func:`plan_parse`."""
    candidates = [p for p in files if p not in skip]
    named = [(p, None) for p in candidates if _named_table(p)]
    odd = [p for p in candidates if not _named_table(p)]
    if required and odd:
        raise ValueError(f"--format csv reads *.csv / *.tsv files (optionally .gz, .bz2, .xz or .zst): not {odd[:3]}")
    with ThreadPoolExecutor(16) as pool:  # behind a URI each is a request
        zips = [p for p in odd if p.lower().endswith(".zip")]
        for path, members in _listings(pool, zips, {} if listings is None else listings).items():
            named.extend((path, m) for m in members or () if _named_table(m[0]))
        headers = dict(zip(named, pool.map(lambda unit: _table_header(*unit), named)))
    out = {}
    for (path, member), header in headers.items():
        if header is None:
            if required:
                raise ValueError(f"--format csv: {path} is not a CSV table with a header line (Sentiment140's CSV "
                                 "has none: use --format sentiment140 or auto)")
            continue
        sep = readers.table_separator(member[0] if member else path, header)
        out[(path, member)] = (sep, header)
    return out


CSV_ROWS_PER_FRAME = 10_000


def table_names(header: str, sep: str) -> list[str]:
    """A CSV header's column names, each unique (a repeated name gets ``_2``, ``_3``; a blank one is
    ``_c<i>``, as Spark names it), then TABLE_EXTRA."""
    import csv

    names: list[str] = []
    for i, name in enumerate(next(csv.reader([header], delimiter=sep), [])):
        name = name.strip() or f"_c{i}"
        base, k = name, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names + [TABLE_EXTRA]


class _PushBack:
    """A text file's lines for ``csv.reader``, keeping those of the row being read (``taken``), with
    lines given back (:meth:`again`) read first."""

    def __init__(self, lines):
        self.lines, self.back, self.taken = lines, [], []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.back.pop() if self.back else next(self.lines)
        self.taken.append(line)
        return line

    def again(self, lines: list[str]) -> None:
        self.back.extend(reversed(lines))


def _runs_over_rows(row: list[str], taken: list[str], width: int, sep: str) -> bool:
    """Whether a row read over several lines holds lines that read as rows of the table on their
    own: a quote opened in a field and never closed (a text that starts with one) runs on until
    the next quote, taking the rows between into its text. A line counts as a row when it has the
    header's number of fields and its first field looks like the row's own (digits where the id
    column holds digits)."""
    import csv

    if len(taken) < 2:
        return False
    first = row[0].strip()
    digits = first.isdigit()
    for line in taken[1:]:
        fields = next(csv.reader([line.rstrip("\r\n").replace('"', "")], delimiter=sep), [])
        if len(fields) == width and (not digits or fields[0].strip().isdigit()):
            return True
    return False


def read_csv_units(units: list[tuple], sep: str, names: list[str]):
    """mapInArrow body over ``spark.range(len(units))``: task ``i`` reads the CSV table
    ``units[i] = (path, zip member or None)`` (RFC 4180: quoted fields keep separators, quotes as
    ``""`` and newlines; UTF-8, invalid bytes replaced) into the all-string columns ``names`` (the
    header's, then TABLE_EXTRA): the header row and blank lines skipped, empty fields null, missing
    ones null, fields beyond the header's joined into TABLE_EXTRA. Three more columns: TABLE_SOURCE
    (the row's file, ``<zip>!/<member>`` for a member), TABLE_LINE (the line the row starts on) and
    TABLE_ERROR (a last row when the file breaks off: "reason: message"). Rows go to Arrow a column
    at a time, without pandas."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.compute as pc

    width = len(names) - 1
    columns = names + [TABLE_SOURCE, TABLE_LINE, TABLE_ERROR]
    null = pa.scalar(None, pa.string())

    def batch(rows: list, extras: list, lines: list, source: str, errors: list | None = None) -> pa.RecordBatch:
        fields = [pa.array(c, pa.string()) for c in zip(*rows)] if rows else [pa.nulls(1, pa.string())] * width
        fields = [pc.if_else(pc.not_equal(f, ""), f, null) for f in fields]  # an empty field is null
        n = max(len(rows), 1)
        return pa.RecordBatch.from_arrays(
            fields + [pa.array(extras or [None], pa.string()), pa.array([source] * n, pa.string()),
                      pa.array(lines or [None], pa.int64()), pa.array(errors or [None] * n, pa.string())],
            names=columns)

    units = TaskItems(units)

    def batches_of(path: str, member) -> Iterator[pa.RecordBatch]:
        source = readers.member_path(path, member[0]) if member else path
        read, line = 0, 1
        rows: list = []
        extras: list = []
        lines: list = []
        errors: list = []
        try:
            with io.TextIOWrapper(readers.open_data(path, member), encoding="utf-8-sig", errors="replace",
                                  newline="") as text:
                feed = _PushBack(text)
                reader = csv.reader(feed, delimiter=sep)
                for row in reader:  # up to the header row (csv_tables read it)
                    if row:
                        break
                line = reader.line_num + 1
                while True:
                    feed.taken = []
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except csv.Error:  # a quote left open runs to the end of the file
                        if len(feed.taken) < 2:
                            raise
                        row = None
                    start, line = line, line + len(feed.taken)
                    if row == []:  # a blank line
                        continue
                    if row is None or _runs_over_rows(row, feed.taken, width, sep):
                        # a quote opened and never closed swallowed the lines after it: this line
                        # is a reject, and they are read again as the rows they are
                        feed.again(feed.taken[1:])
                        reader = csv.reader(feed, delimiter=sep)
                        line = start + 1
                        row, extra = [""] * width, None
                        errors.append(f"{schema.UNBALANCED_QUOTE}: a quote opened on line {start} is not closed "
                                      f"before lines that read as rows: {feed.taken[0][:500]}")
                    elif len(row) != width:
                        extra = sep.join(row[width:]) if len(row) > width else None
                        row = row[:width] + [""] * (width - len(row))
                        errors.append(None)
                    else:
                        extra = None
                        errors.append(None)
                    extras.append(extra)
                    rows.append(row)
                    lines.append(start)
                    if len(rows) >= CSV_ROWS_PER_FRAME:
                        read += len(rows)
                        yield batch(rows, extras, lines, source, errors)
                        rows, extras, lines, errors = [], [], [], []
            if rows:
                yield batch(rows, extras, lines, source, errors)
        except (*readers.STREAM_ERRORS, csv.Error) as exc:
            read += len(rows)
            if rows:
                yield batch(rows, extras, lines, source, errors)
            if isinstance(exc, csv.Error):
                error = (f"{schema.UNREADABLE_FILE}: the CSV cannot be read on from the row that starts on line "
                         f"{line} (after {read} rows): {exc}")
            else:
                reason = schema.TRUNCATED_FILE if read or isinstance(exc, EOFError) else schema.UNREADABLE_FILE
                error = f"{reason}: file breaks off after {read} rows: {type(exc).__name__}: {exc}"
            yield batch([], [], [], source, [error])

    def read(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for ids_batch in ids:
            for task in ids_batch.column(0).to_pylist():
                yield from batches_of(*units[task])
    return read


def read_records(spark, paths: Sequence[str], fmt: str = "auto", columns: dict | None = None,
                 files_per_task: int = 1, plan: dict | None = None):
    """All inputs as one record DataFrame (RECORD_DDL). Archive and CSV files are parsed in Python
    (at most ``files_per_task`` files per task, at least one task per slot while there are files;
    a corrupt file is a reject, never a failed job);
    Parquet tables are read by Spark and mapped to the canonical columns with ``columns``."""
    from pyspark.sql import functions as F

    files = readers.list_input_files(paths)  # a Listed (jobs.score's) as it is, with its sizes
    parquet = [p for p in files if fmt == "parquet" or (fmt == "auto" and p.endswith((".parquet", ".pq")))]
    parquet_set = set(parquet)
    listings: dict = {}  # each archive listed once for the table search and the parse plan
    tables = csv_tables(files if fmt in ("auto", "csv") else [], required=fmt == "csv", skip=parquet_set,
                        listings=listings)
    table_files = {path for path, member in tables if member is None}
    others = [p for p in files if p not in parquet_set and p not in table_files]
    frames = []
    stats: dict = {}
    if others:
        tasks, stats = plan_parse(spark, others, fmt, files_per_task,
                                  skip_members={(path, member[0]) for path, member in tables if member},
                                  listings=listings, known_sizes=files.sizes)
        log.info("parse: %s", stats)
        if tasks:
            # one partition per task and no shuffle: spark.range's rows are the task numbers, each
            # task's units travel in the (broadcast) function
            named = tuple((k, v) for k, v in (columns or {}).items() if v)  # --id-col ...: JSON objects too
            # two threads per bzip2 file where each task has two slots to itself (one minute file)
            stats["decode_threads"] = 2 if 2 * len(tasks) <= spark.sparkContext.defaultParallelism else 1
            body = parse_units(tasks, columns=named, decode_threads=stats["decode_threads"])
            frames.append(spark.range(0, len(tasks), 1, len(tasks)).mapInPandas(body, RECORD_DDL))
    stats["csv_tables"] = len(tables)
    if plan is not None:  # the caller's run summary
        plan.update(stats)
    if parquet:
        frames.extend(read_parquet_tables(spark, parquet, columns or {}))
    by_header: dict[tuple, list[tuple]] = {}
    for unit, key in tables.items():
        by_header.setdefault(key, []).append(unit)
    for (sep, header), group in by_header.items():  # one schema per header: one task per table
        # every column a string, and one more: a row with more fields than the header (an unquoted
        # comma in a text) fills TABLE_EXTRA and becomes a bad_field_count reject, not a cut text
        names = table_names(header, sep)
        ddl = (", ".join("`{}` string".format(n.replace("`", "``")) for n in names + [TABLE_SOURCE])
               + f", `{TABLE_LINE}` long, `{TABLE_ERROR}` string")
        df = spark.range(0, len(group), 1, len(group)).mapInArrow(read_csv_units(group, sep, names), ddl)
        frames.append(map_table(df, columns or {}, "csv"))
    if not frames:
        raise ValueError(f"no input files found under {list(paths)}")
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.select(*[F.col(c) for c in RECORD_COLUMNS])


# A tweet table's columns (Parquet, CSV with a header): found by name (schema.TABLE_COLUMNS)
TABLE_COLUMNS = schema.TABLE_COLUMNS
# the column a CSV table is read with beyond its header's: only a row with more fields fills it
TABLE_EXTRA = "_fields_beyond_the_header"
# the column of twarc2 csv's tables (DocNow/twarc-csv) that names the tweet a retweet retweets
TWARC_RETWEET = "referenced_tweets.retweeted.id"
# and those of a table read in Python (read_csv_units): the row's file and line, and a read error
TABLE_SOURCE, TABLE_LINE, TABLE_ERROR = "_source_file_of_the_row", "_line_of_the_row", "_read_error"


# pandas writes datetime64[ns] columns as Parquet TIMESTAMP(NANOS), which Spark refuses to read as
# a timestamp: read as the long it is, the time column's magnitude tells its unit (_table_timestamp)
PARQUET_NANOS_CONF = "spark.sql.legacy.parquet.nanosAsLong"


def read_parquet_tables(spark, paths: Sequence[str], columns: dict) -> list:
    """Parquet tweet tables as record frames: one, read with the files' schemas merged (a column
    that only later files have is null in the earlier ones, not dropped); where the files
    disagree on a column's type (an id written as int64 one day and as text the next), one frame
    per schema, each mapped on its own. Sets PARQUET_NANOS_CONF on the session (it changes only
    how TIMESTAMP(NANOS) columns read, which Spark otherwise refuses)."""
    spark.conf.set(PARQUET_NANOS_CONF, "true")
    paths = [spark_path(p) for p in paths]  # a local file, not one of the cluster's default file system
    try:
        return [map_table(spark.read.option("mergeSchema", "true").parquet(*paths), columns)]
    except Exception as exc:  # noqa: BLE001 - Py4JJavaError / AnalysisException, told by the message
        if "CANNOT_MERGE_SCHEMAS" not in str(exc) and "Failed to merge" not in str(exc):
            raise
    groups: dict[str, list[str]] = {}
    for path in paths:  # one footer read each: only for inputs whose schemas disagree
        groups.setdefault(spark.read.parquet(path).schema.simpleString(), []).append(path)
    log.info("parquet: %d files in %d schemas, mapped one schema at a time", len(paths), len(groups))
    return [map_table(spark.read.parquet(*group), columns) for group in groups.values()]


def _table_column(df, name: str):
    """A column of ``df`` by its name, dots and all (twarc-csv's ``author.username``); a name that
    is no column is taken as a path into a struct (``user.screen_name`` of a nested Parquet)."""
    from pyspark.sql import functions as F

    return F.col(f"`{name}`") if name in df.columns else F.col(name)


def _has_column(df, name: str) -> bool:
    if name in df.columns:
        return True
    if "." not in name:  # no path into a struct; probing would log the analysis error at ERROR
        return False
    try:
        df.select(_table_column(df, name)).schema  # noqa: B018 - resolves the path, or raises
        return True
    except Exception:  # noqa: BLE001 - AnalysisException: no such column or field
        return False


def _table_timestamp(df, name: str):
    """A table's time column as a timestamp: a timestamp or date as it is; a string as ISO 8601
    (``2021-03-01T10:00:00.000Z``, twarc-csv), as the v1.1 API writes it (``Mon Mar 01 10:00:00
    +0000 2021``) or as Sentiment140 does (``Mon Apr 06 22:19:45 PDT 2009``); anything else null (a
    bad_timestamp reject, never a failed job under ANSI)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, DoubleType, FloatType, IntegralType, StringType

    col = _table_column(df, name)
    kind = df.select(col).schema[0].dataType
    if isinstance(kind, (IntegralType, FloatType, DoubleType, DecimalType)):
        # epoch seconds, milliseconds, microseconds or nanoseconds, told apart by size (ms from 1e11:
        # seconds there would be the year 5138), as the JSON readers take numbers
        v = col.try_cast("double")
        a = F.abs(v)
        seconds = (F.when(a >= 1e20, F.lit(None)).when(a >= 1e17, v / 1e9).when(a >= 1e14, v / 1e6)
                   .when(a >= 1e11, v / 1e3).otherwise(v))
        return F.when(~F.isnan(v), F.timestamp_seconds(seconds))
    if not isinstance(kind, StringType):
        return col.try_cast("timestamp")
    value, day_dropped = F.trim(col), F.substring(F.trim(col), 5, 64)
    return F.coalesce(F.try_to_timestamp(value),
                      F.try_to_timestamp(day_dropped, F.lit("MMM dd HH:mm:ss Z yyyy")),
                      F.try_to_timestamp(day_dropped, F.lit("MMM dd HH:mm:ss z yyyy")))  # Sentiment140's "PDT"


# a table's tweet times outside this range are bad_timestamp rejects (a unit misread, a placeholder
# far in the future), not partitions no date type can name
TIME_RANGE = ("1970-01-01", "2100-01-01")


def map_table(df, columns: dict, what: str = "parquet"):
    """A tweet table (Parquet, CSV) -> records: mapped columns (TABLE_COLUMNS, or as named in
    ``columns``); rows without id, time or text -> rejects."""
    from pyspark.sql import functions as F

    named = {k: v for k, v in columns.items() if v}
    cols = {k: named.get(k) or schema.find_column(df.columns, k) or names[0] for k, names in TABLE_COLUMNS.items()}
    for required in ("id", "text", "time"):
        if not _has_column(df, cols[required]):
            tried = cols[required] if required in named else " / ".join(TABLE_COLUMNS[required])
            raise ValueError(f"{what} input has no column {tried!r} for the tweet {required} "
                             f"(columns: {df.columns}); name it with --{required}-col")

    def opt(key, typ):
        return _table_column(df, cols[key]).try_cast(typ) if _has_column(df, cols[key]) else F.lit(None).cast(typ)

    id_type = df.select(_table_column(df, cols["id"])).schema[0].dataType
    if id_type.typeName() in ("float", "double") or (id_type.typeName() == "decimal" and id_type.scale > 0):
        raise ValueError(f"{what} input: the id column {cols['id']!r} holds {id_type.simpleString()} numbers, which "
                         "cannot hold tweet ids exactly (above 2^53 they round, and different tweets get one id). "
                         "pandas writes an integer column with a gap as float64: write the ids as int64 or text")
    tid = _table_column(df, cols["id"]).cast("string")
    ts = _table_timestamp(df, cols["time"])
    ts = F.when((ts >= F.lit(TIME_RANGE[0]).cast("timestamp")) & (ts < F.lit(TIME_RANGE[1]).cast("timestamp")), ts)
    text = _table_column(df, cols["text"]).cast("string")
    retweet = F.coalesce(opt("retweet", "boolean"), F.lit(False))
    if what == "csv" and TWARC_RETWEET in df.columns and "retweet" not in named and not _has_column(df, cols["retweet"]):
        # twarc2 csv: a retweet names the tweet it retweets (its text is already that tweet's), and
        # every newline in a text is written as the two characters \n so that each row is one line
        retweet = F.coalesce(F.trim(F.col(f"`{TWARC_RETWEET}`")) != "", F.lit(False))
        text = F.regexp_replace(text, r"\\n", "\n")
    extra = F.col(f"`{TABLE_EXTRA}`").isNotNull() if TABLE_EXTRA in df.columns else F.lit(False)
    error = F.col(TABLE_ERROR) if TABLE_ERROR in df.columns else F.lit(None).cast("string")
    reason = (F.when(error.isNotNull(), F.substring_index(error, ":", 1))
              .when(extra, F.lit(schema.BAD_FIELD_COUNT))
              .when(tid.isNull() | (F.trim(tid) == ""), F.lit(schema.MISSING_ID))
              .when(ts.isNull(), F.lit(schema.BAD_TIMESTAMP))
              .when(text.isNull() | (F.trim(text) == ""), F.lit(schema.EMPTY_TEXT)))
    fields = [c for c in df.columns if c not in (TABLE_SOURCE, TABLE_LINE, TABLE_ERROR)]
    raw = F.substring(F.coalesce(error, F.to_json(F.struct(*[_table_column(df, c) for c in fields]))), 1,
                      schema.MAX_RAW_CHARS)
    src = F.col(TABLE_SOURCE) if TABLE_SOURCE in df.columns else F.input_file_name()
    # a CSV row's line: a reject's own, a tweet's as parse_units keys it (for the dedup's order)
    line = F.col(TABLE_LINE) if TABLE_LINE in df.columns else F.lit(None).cast("long")
    line_no = F.when(reason.isNotNull(), line).otherwise(line * RECORDS_PER_LINE)
    return df.select(
        F.when(reason.isNull(), F.lit("tweet")).otherwise(F.lit("reject")).alias("kind"),
        tid.alias("tweet_id"), ts.alias("created_at"), F.to_date(ts).alias("dt"),
        opt("user", "string").alias("user"), opt("lang", "string").alias("lang"), text.alias("text"),
        retweet.alias("is_retweet"), src.alias("source_file"),
        line_no.alias("line_no"),
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
