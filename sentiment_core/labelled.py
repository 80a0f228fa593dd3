"""Readers for labelled tweet files (training and evaluation data), streamed in chunks.

Formats:
- ``sentiment140``: the published CSV (see :mod:`sentiment_core.sentiment140`); target 0 -> 0,
  4 -> 1, 2 (neutral) dropped and counted.
- ``semeval``: SemEval Twitter task A gold files, ``id<TAB>label<TAB>text``, labels
  positive/negative/neutral; tolerates a trailing tab and a tweet whose text spans two lines.
- ``table``: CSV, TSV or Parquet with a text column and a label column (named by the caller),
  optionally an id column. Labels 0/1, 0/4, negative/positive (neutral dropped), false/true, as
  strings, integers or whole floats (``1.0``: pandas writes those for a column with gaps); other
  schemes (0/1/2, -1/0/1) need ``--label-map``, which then says what every value means. CSV
  bytes that are not UTF-8 (an Excel cp1252 export) are replaced, as in Sentiment140 files.

Each reader yields :class:`Chunk` objects (ids, texts, labels) and fills a :class:`ReadStats`
with every row it did not yield and why, so that nothing vanishes silently. Sentiment140 and
SemEval files may be gzip, bzip2, xz or zstd compressed (told by their first bytes); CSV/TSV
tables by their extension (``.csv.gz``, ``.tsv.bz2``, ``.csv.zst``), as pyarrow reads them. A zip
or tar archive of one file (a Kaggle download) is read as that file; one file of an archive of
several is named ``ARCHIVE!/MEMBER`` (``trainingandtestdata.zip!/testdata.manual.2009.06.14.csv``).
"""
from __future__ import annotations

import hashlib
import logging
import lzma
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

from . import readers, schema
from . import sentiment140 as s140

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
FORMATS = ("auto", "sentiment140", "semeval", "table")

# label value (lower-cased string) -> binary label; None = neutral (dropped, counted)
LABEL_VALUES = {
    "0": 0, "4": 1, "1": 1, "2": None,
    "negative": 0, "positive": 1, "neutral": None, "neg": 0, "pos": 1, "neu": None,
    "false": 0, "true": 1,
}


@dataclass
class Chunk:
    ids: list[str]
    texts: list[str]
    labels: list[int]
    source: str


@dataclass
class ReadStats:
    rows: int = 0  # records seen (non-blank lines / table rows)
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    invalid_utf8: int = 0  # kept rows whose invalid bytes were replaced
    examples: dict = field(default_factory=dict)  # reason -> first raw example (bounded)

    def drop(self, reason: str, raw: str = "") -> None:
        self.dropped[reason] += 1
        self.examples.setdefault(reason, raw[:200])

    def as_dict(self) -> dict:
        return {"rows": self.rows, "kept": self.kept, "dropped": dict(self.dropped),
                "invalid_utf8_rows": self.invalid_utf8}


def data_file(path: str) -> str:
    """The file on disk that holds ``path``: itself, or the archive of ``ARCHIVE!/MEMBER``."""
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory: pass each labelled file with a --data of its own")
    archive = path.partition(readers.TAR_MEMBER_SEP)[0] if not os.path.isfile(path) else path
    if not os.path.isfile(archive):
        raise FileNotFoundError(f"data file not found: {path}")
    return archive


class _Data(NamedTuple):
    """Where a data path's bytes are (:func:`_resolve`)."""
    file: str  # the file on disk
    member: tuple | None  # its archive member, or None
    name: str  # the name that tells the data's kind: the member's, else the path

    def open(self):
        """The data's bytes, decompressed."""
        return readers.open_data(self.file, self.member)


def _resolve(path: str) -> _Data:
    """A data path, resolved once per read: a plain or compressed file; a zip or tar archive of one
    file (a Kaggle download: that file); or ``ARCHIVE!/MEMBER``, one file of an archive of several
    (Sentiment140's ``trainingandtestdata.zip`` holds the training and the test file). Any other
    archive is refused with its members named."""
    import tarfile
    import zipfile

    archive = data_file(path)
    name = path[len(archive) + len(readers.TAR_MEMBER_SEP):] if archive != path else None
    try:
        members = readers.archive_members(archive)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ValueError(f"{archive} looks like a zip or tar archive but cannot be read ({exc}); extract the file "
                         "to read and pass it with --data") from exc
    listed = ", ".join(m[0] for m in (members or [])[:5]) + (", ..." if len(members or []) > 5 else "")
    if members is None:
        if name is not None:
            raise ValueError(f"{archive} is not a zip or tar archive: pass it as --data {archive}")
        return _Data(archive, None, path)
    if name is not None:
        member = next((m for m in members if m[0] == name), None)
        if member is None:
            raise ValueError(f"{archive} has no file {name!r} (it holds {listed})")
        return _Data(archive, member, name)
    if len(members) == 1:
        return _Data(archive, members[0], members[0][0])
    largest = max(members, key=lambda m: m[2])[0]
    raise ValueError(f"{archive} is an archive of {len(members)} files ({listed}): name the one to read, as in "
                     f"--data {readers.member_path(archive, largest)}")


def detect_format(path: str) -> str:
    return _detect_format(_resolve(path))


_BOM = b"\xef\xbb\xbf"


def _is_parquet(data: _Data) -> bool:
    """By its name, or by its magic where the name says nothing (a download saved without one)."""
    if Path(data.name).suffix.lower() in (".parquet", ".pq"):
        return True
    if data.member is not None:
        return False
    with open(data.file, "rb") as f:
        return f.read(len(readers.PARQUET_MAGIC)) == readers.PARQUET_MAGIC


def _lines(f) -> Iterator[bytes]:
    """The lines of a text file's bytes, without the UTF-8 byte order mark an editor may put first."""
    first = True
    for raw in f:
        if first:
            raw, first = raw.removeprefix(_BOM), False
        yield raw


_DAMAGED = (EOFError, OSError, lzma.LZMAError)  # gzip/bzip2/xz/zstd cut short, or damaged bytes


def _damaged(path, rows: int, exc: BaseException) -> ValueError:
    return ValueError(f"{path}: the file ends early or is damaged after {rows} rows ({exc}); "
                      "download or compress it again")


def _detect_format(data: _Data) -> str:
    if _is_parquet(data):
        return "table"
    with data.open() as f:
        def head():  # the first lines, each read up to 64 kB: a file with no line ends is not read whole
            for no in range(s140.MAX_RECORD_LINES):
                raw = f.readline(65536)
                if not raw:
                    return
                yield no, s140.decode(raw.removeprefix(_BOM) if no == 0 else raw)[0]

        lines = head()
        # the first record, which a Sentiment140 export may have quoted over several lines
        text = next(s140.records(lines, sep=""), (0, ""))[1]
        lines.close()
    if s140.split_line(text) is not None:
        return "sentiment140"
    if _SEMEVAL_LINE.match(text):
        return "semeval"
    return "table"


def parse_label_map(spec: str | None) -> tuple[tuple[str, str], ...]:
    """``--label-map`` ("0=negative,1=neutral,2=positive") as (raw value, label word) pairs."""
    if not spec:
        return ()
    pairs = []
    for item in spec.split(","):
        raw, sep, word = item.partition("=")
        if not sep or word.strip().lower() not in ("negative", "neutral", "positive"):
            raise ValueError(f"--label-map {spec!r}: expected VALUE=negative|neutral|positive, comma-separated "
                             "(e.g. 0=negative,1=neutral,2=positive)")
        pairs.append((label_key(raw), word.strip().lower()))
    return tuple(pairs)


_WHOLE_FLOAT = re.compile(r"[+-]?\d+\.0*")


def label_key(value) -> str:
    """A label value as the label tables know it: stripped, lower-cased, a whole float as its
    integer (``1.0`` -> ``1``: pandas writes an integer column with gaps as floats)."""
    key = str(value).strip().lower()
    return str(int(float(key))) if "." in key and _WHOLE_FLOAT.fullmatch(key) else key


# numeric labels whose meaning depends on the dataset: 0/1/2 is negative/neutral/positive in tweet_eval
# and most 3-class sets, but this reader's fixed values make 1 positive (binary) and 2 neutral (Sentiment140)
_AMBIGUOUS_LABELS = {"1", "2"}


def read_labelled(path: str, fmt: str = "auto", stats: ReadStats | None = None, *,
                  text_col: str = "text", label_col: str = "label", id_col: str | None = None,
                  label_map: tuple[tuple[str, str], ...] = (), chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Stream a labelled file as chunks of (id, text, label). Raises ValueError for a file that
    is not in the named format at all (no row could be read); bad rows are counted in stats.
    ``label_map`` (table format): raw label values -> negative / neutral / positive, all of them:
    a value the map lacks is dropped as ``unmapped_label``. Without one, the fixed values of
    LABEL_VALUES; a table whose labels include both 1 and 2, or -1, needs one. Sentiment140 and
    SemEval files have fixed labels: a map given for the tables beside them leaves them alone."""
    data = _resolve(path)
    stats = stats if stats is not None else ReadStats()
    try:
        fmt = _detect_format(data) if fmt == "auto" else fmt
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except _DAMAGED as exc:
        raise _damaged(path, 0, exc) from exc
    if label_map and fmt != "table":
        log.warning("%s is a %s file, whose labels are fixed: --label-map applies to table files only", path, fmt)
    if fmt == "sentiment140":
        gen = _read_sentiment140(data, stats, chunk_rows)
    elif fmt == "semeval":
        gen = _read_semeval(data, stats, chunk_rows)
    elif fmt == "table":
        gen = _read_table(path, data, stats, text_col, label_col, id_col, chunk_rows, dict(label_map))
    else:
        raise ValueError(f"unknown data format {fmt!r}; use one of {FORMATS}")
    try:
        for chunk in gen:
            stats.kept += len(chunk.ids)
            yield chunk
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except _DAMAGED as exc:
        raise _damaged(path, stats.rows, exc) from exc
    except ValueError as exc:  # pyarrow's CSV and Parquet errors name neither the file nor what to do
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: {exc}; check --format and the file") from exc
    if stats.rows and not stats.kept and sum(stats.dropped.values()) == stats.rows:
        worst = stats.dropped.most_common(1)[0][0]
        if worst in ("bad_field_count", "bad_label", "missing_column"):
            raise ValueError(f"{path}: no row could be read as {fmt} (every row: {worst}, e.g. "
                             f"{stats.examples.get(worst)!r}); check --format")


class _Batcher:
    def __init__(self, source: str, chunk_rows: int):
        self.source, self.chunk_rows = source, chunk_rows
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.labels: list[int] = []

    def add(self, id_: str, text: str, label: int) -> Chunk | None:
        self.ids.append(id_)
        self.texts.append(text)
        self.labels.append(label)
        return self.flush() if len(self.ids) >= self.chunk_rows else None

    def flush(self) -> Chunk | None:
        if not self.ids:
            return None
        c = Chunk(self.ids, self.texts, self.labels, self.source)
        self.ids, self.texts, self.labels = [], [], []
        return c


def _accept(stats: ReadStats, batcher: _Batcher, id_: str, text: str, label_value: str, raw: str):
    key = label_key(label_value)
    if key not in LABEL_VALUES:
        stats.drop("bad_label", raw)
        return None
    label = LABEL_VALUES[key]
    if label is None:
        stats.drop("neutral", raw)
        return None
    if not text.strip():
        stats.drop("empty_text", raw)
        return None
    return batcher.add(id_, text, label)


def _read_sentiment140(data: _Data, stats: ReadStats, chunk_rows: int) -> Iterator[Chunk]:
    b = _Batcher(os.path.basename(data.name), chunk_rows)
    bad_lines: set[int] = set()  # lines with invalid bytes (a record counts by its first line)

    def decoded(f):
        for no, raw in enumerate(_lines(f)):
            line, bad_bytes = s140.decode(raw)
            if bad_bytes:
                bad_lines.add(no)
            yield no, line

    with data.open() as f:
        # a text written on several lines is one record; the lines keep their ends, so joined as they are
        for no, line in s140.records(decoded(f), sep=""):
            bad_bytes = no in bad_lines
            bad_lines.discard(no)
            if not line.strip():
                continue
            stats.rows += 1
            fields = s140.split_line(line)
            if fields is None:
                stats.drop("bad_field_count", line)
                continue
            stats.invalid_utf8 += bad_bytes
            out = _accept(stats, b, fields[s140.IDS], fields[s140.TEXT], fields[s140.TARGET], line)
            if out is not None:
                yield out
    last = b.flush()
    if last is not None:
        yield last


_SEMEVAL_LINE = re.compile(r"^(\d+)\t(positive|negative|neutral|objective|objective-OR-neutral)\t(.*)$",
                           re.IGNORECASE | re.DOTALL)


def _read_semeval(data: _Data, stats: ReadStats, chunk_rows: int) -> Iterator[Chunk]:
    b = _Batcher(os.path.basename(data.name), chunk_rows)
    pending: list[str] | None = None  # [id, label, text] of the record being read

    def finish(rec):
        label = "neutral" if rec[1].lower().startswith("objective") else rec[1]
        return _accept(stats, b, rec[0], semeval_text(rec[2]), label, "\t".join(rec))

    with data.open() as f:
        for raw in _lines(f):
            line, bad_bytes = s140.decode(raw)
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            m = _SEMEVAL_LINE.match(line)
            if m:
                if pending is not None:
                    out = finish(pending)
                    if out is not None:
                        yield out
                stats.rows += 1
                stats.invalid_utf8 += bad_bytes
                pending = [m.group(1), m.group(2), m.group(3)]
            elif pending is not None:  # continuation of a tweet that spans lines
                pending[2] += "\n" + line
            else:
                stats.rows += 1
                stats.drop("bad_field_count", line)
    if pending is not None:
        out = finish(pending)
        if out is not None:
            yield out
    last = b.flush()
    if last is not None:
        yield last


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?")


def _unescape(m: re.Match) -> str:
    first = int(m.group(1), 16)
    second = int(m.group(2), 16) if m.group(2) else None
    if 0xD800 <= first < 0xDC00 and second is not None:  # a surrogate pair: one character
        return chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    lone = "\ufffd" if 0xD800 <= first < 0xE000 else chr(first)  # a lone half cannot be written as UTF-8
    return lone + ("\ufffd" if second is not None else "")


def semeval_text(field: str) -> str:
    """A SemEval gold file's text as the tweet reads. The files carry traces of how they were made:
    some texts are CSV-quoted (wrapped in quotes, quotes inside doubled: 7,614 of the 2016 test
    file's 20,632) and some keep JSON escapes (``\\u2019``, ``\\u002c`` for a comma, ``\\"``). A text
    wrapped in quotes with a lone quote inside is a tweet that quotes, and is left as it is."""
    text = field.rstrip("\t ")
    if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1].replace('""', ""):
        text = text[1:-1].replace('""', '"')
    if "\\" in text:
        text = _JSON_ESCAPE.sub(_unescape, text).replace('\\"', '"')
    return text


def _csv_header(data: _Data) -> tuple[list[str], str]:
    """A CSV/TSV table's column names and separator (``readers.table_separator``), from its first
    line (read apart so that a missing column is named before any row is parsed, and only the
    named columns are converted)."""
    import csv

    with data.open() as f:
        first = s140.decode(f.readline(1 << 20).removeprefix(_BOM))[0].rstrip("\r\n")
    delim = readers.table_separator(data.name, first)
    return next(csv.reader([first], delimiter=delim), []), delim


def _read_table(path: str, data: _Data, stats: ReadStats, text_col: str, label_col: str, id_col: str | None,
                chunk_rows: int, label_map: dict[str, str] | None = None) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet = _is_parquet(data)  # its magic read once
    if parquet:
        if data.member is not None:
            raise ValueError(f"{path}: a Parquet file is read where it lies, not inside an archive; extract it")
        pf = pq.ParquetFile(data.file)
        names = pf.schema_arrow.names
    else:
        names, delim = _csv_header(data)
    text_col = _column(path, names, text_col, "text")
    label_col = _column(path, names, label_col, "label")
    wanted = [c for c in (text_col, label_col, id_col) if c]
    if parquet:
        batches = lambda: pf.iter_batches(batch_size=chunk_rows, columns=wanted)  # noqa: E731
    else:
        # the named columns only, as bytes: decoded here with invalid bytes replaced and counted,
        # where pyarrow refuses the whole file at the first byte that is not UTF-8
        batches = lambda: pacsv.open_csv(  # noqa: E731
            data.open() if data.member is not None else data.file,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True,
                                             invalid_row_handler=lambda row: _bad_row(stats, row)),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.binary() for c in wanted}, include_columns=wanted))
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} not found (columns: {names}); "
                         "name them with --text-col/--label-col/--id-col")
    b = _Batcher(os.path.basename(data.name), chunk_rows)
    seen: set[str] = set()
    for batch in batches():
        cols = {c: _decoded(batch.column(c).to_pylist(), stats) for c in wanted}
        texts, labels = cols[text_col], cols[label_col]
        if not label_map:
            seen.update(label_key(v) for v in set(labels) if v is not None)
            _check_label_scheme(path, label_col, seen)
        ids = cols[id_col] if id_col else [None] * len(texts)
        for id_, text, label in zip(ids, texts, labels):
            stats.rows += 1
            if text is None:
                stats.drop("empty_text", "")
                continue
            raw = f"label {label!r}: {text}"
            if label is None:
                stats.drop("bad_label", raw)
                continue
            if label_map:  # the map says what every value means: one it lacks is dropped and counted
                label = label_map.get(label_key(label))
                if label is None:
                    stats.drop("unmapped_label", raw)
                    continue
            id_ = str(id_) if id_ is not None else "sha1:" + hashlib.sha1(text.encode()).hexdigest()[:16]
            out = _accept(stats, b, id_, str(text), str(label), raw)
            if out is not None:
                yield out
    last = b.flush()
    if last is not None:
        yield last


# A labelled table's text and label columns where it has none named ``text`` / ``label`` (and the
# user named none): the first of these names it has, compared as schema.column_key compares them
# (``Sentiment``, ``airline_sentiment``). tweet_eval and most exports say text/label; Sentiment140
# with a header says target; the Kaggle airline tweets airline_sentiment; IMDB-style sets sentiment.
# A label scheme the reader would misread is still refused (_check_label_scheme).
_COLUMN_NAMES = {
    "text": schema.TABLE_COLUMNS["text"] + ("tweet_text", "sentence"),
    "label": ("label", "sentiment", "target", "polarity", "airline_sentiment", "class", "sentiment_label"),
}


def _column(path: str, names: list[str], given: str, field: str) -> str:
    """The column to read for ``field`` (text or label): ``given`` where the table has it or the
    user named it, else the first of _COLUMN_NAMES[field] the table has (logged)."""
    if given in names or given != field:
        return given
    found = schema.first_column(names, _COLUMN_NAMES[field])
    if found is None:
        return given
    log.info("%s: %s column %r, found by name (--%s-col names another)", path, field, found, field)
    return found


def _decoded(values: list, stats: ReadStats) -> list:
    """A CSV column read as bytes, decoded as UTF-8 with invalid bytes replaced (counted); other
    values (a Parquet file's strings, numbers, booleans) as they are."""
    out = []
    for v in values:
        if isinstance(v, bytes):
            v, bad = s140.decode(v)
            stats.invalid_utf8 += bad
        out.append(v)
    return out


def _check_label_scheme(path: str, label_col: str, seen: set[str]) -> None:
    """Refuse a table whose label values this reader's fixed table would read wrongly."""
    if "-1" in seen:
        three = "0" in seen
        raise ValueError(
            f"{path}: labels {sorted(seen)[:6]} in column {label_col!r} use -1 for negative"
            + (", so 0 is neutral, not negative as in binary 0/1 labels" if three else "")
            + ". Say what they mean with --label-map, e.g. --label-map "
            + ("-1=negative,0=neutral,1=positive" if three else "-1=negative,1=positive"))
    if _AMBIGUOUS_LABELS <= seen:
        raise ValueError(
            f"{path}: labels {sorted(seen)[:6]} in column {label_col!r} are ambiguous: 0/1/2 means negative/"
            "neutral/positive in tweet_eval and most 3-class sets, while this reader takes 1 as positive "
            "(binary 0/1) and 2 as neutral (Sentiment140's 0/2/4). Say what they mean with --label-map, "
            "e.g. --label-map 0=negative,1=neutral,2=positive")


def _bad_row(stats: ReadStats, row) -> str:
    """A CSV row with the wrong number of fields, skipped and counted once per line it spans: a
    quote that is never closed runs on through the lines after it, and those records are counted
    with it, not lost."""
    lines = 1 + (row.text or "").count("\n")
    stats.rows += lines
    stats.dropped["bad_field_count"] += lines
    stats.examples.setdefault("bad_field_count", (row.text or "")[:200])
    return "skip"
