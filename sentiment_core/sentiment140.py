"""The Sentiment140 CSV format, exactly as published.

Six double-quoted fields, no header, one record per line (a text written on several lines, as a
CSV writer quotes it, is joined back: :func:`records`):
``"target","ids","date","flag","user","text"`` with target 0 (negative), 2 (neutral), 4 (positive).
The text itself may hold commas and double quotes, which the file does not escape, so a line is
split on the five ``","`` separators from the left, not by a general CSV parser. The bytes are
UTF-8 (a few invalid sequences exist in the full file): they are decoded as UTF-8 with invalid
bytes replaced by U+FFFD, never as latin-1, which would garble every non-ASCII character.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Iterable, Iterator

N_FIELDS = 6
TARGET, IDS, DATE, FLAG, USER, TEXT = range(N_FIELDS)
# the header line some mirrors add (the published file has none)
HEADER = ("target", "ids", "date", "flag", "user", "text")

# The timezone abbreviations that occur in the published files (Twitter's servers were in
# California); anything else is a bad timestamp rather than a guess.
_TZ_OFFSETS = {"PDT": -7, "PST": -8, "UTC": 0, "GMT": 0}


def decode(raw: bytes) -> tuple[str, bool]:
    """Decode one line's bytes: UTF-8 with replacement. Returns (text, had_invalid_bytes)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def split_line(line: str) -> list[str] | None:
    """Split one line (without its line end) into its 6 fields, or None when it is not one.

    >>> split_line('"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u","say "hi", ok"')
    ['0', '1', 'Mon Apr 06 22:19:45 PDT 2009', 'NO_QUERY', 'u', 'say "hi", ok']
    """
    line = line.rstrip("\r\n")
    if len(line) < 2 or line[0] != '"' or line[-1] != '"':
        return None
    fields = line[1:-1].split('","', N_FIELDS - 1)
    if len(fields) != N_FIELDS:
        return None
    return fields


# the start of a record: its target, then the id field
_RECORD_START = re.compile(r'"[024]","')
# a record whose text runs on over more lines, or characters, than these is not a tweet: what was
# joined is one reject (the pieces of a line too long to read whole share its number, and would
# otherwise be joined without end)
MAX_RECORD_LINES = 64
MAX_RECORD_CHARS = 1 << 16


def records(lines: Iterable[tuple[int, str]], sep: str = "\n") -> Iterator[tuple[int, str]]:
    """(line number, line) pairs -> (number of its first line, record) pairs. A record whose text
    holds line breaks, as a CSV writer quotes a tweet written on several lines (an export in this
    format of one's own tweets), is joined back into one with ``sep`` for each line break (``""``
    for lines that keep their line ends; a line number skipped, a blank line left out, is a break
    too; pieces of one long line, which share its number, join with none). A record that is never
    closed (the next record starts, MAX_RECORD_LINES or MAX_RECORD_CHARS pass, the file ends) is
    given as it was joined, for one reject. The published file has no such record: its lines pass
    through as they are.

    >>> list(records([(1, '"4","1","d","q","u","two'), (2, 'lines"'), (3, '"0","2","d","q","u","one"')]))
    [(1, '"4","1","d","q","u","two\\nlines"'), (3, '"0","2","d","q","u","one"')]
    """
    first = last = size = 0
    parts: list[str] = []
    for no, line in lines:
        if parts:
            size += len(line)
            if no - first >= MAX_RECORD_LINES or size > MAX_RECORD_CHARS or _RECORD_START.match(line):
                yield first, "".join(parts)  # never closed
                parts = []
            else:
                # lines a reader left out between (blank ones) come back as line breaks
                parts += (sep * (no - last), line)
                last = no
                if line.rstrip("\r\n").endswith('"') and split_line("".join(parts)) is not None:
                    yield first, "".join(parts)
                    parts = []
                continue
        if not line.rstrip("\r\n").endswith('"') and _RECORD_START.match(line) and len(line) <= MAX_RECORD_CHARS:
            first = last = no
            size = len(line)
            parts = [line]  # its text goes on past the line end
            continue
        yield no, line
    if parts:
        yield first, "".join(parts)


def parse_date(value: str) -> _dt.datetime | None:
    """``Mon Apr 06 22:19:45 PDT 2009`` -> aware UTC datetime, or None when it does not parse."""
    parts = value.split()
    if len(parts) != 6 or parts[4] not in _TZ_OFFSETS:
        return None
    try:
        local = _dt.datetime.strptime(" ".join(parts[:4] + parts[5:]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return (local - _dt.timedelta(hours=_TZ_OFFSETS[parts[4]])).replace(tzinfo=_dt.timezone.utc)


# target -> binary label; 2 (neutral) maps to None: dropped by binary training, counted.
TARGET_TO_LABEL = {"0": 0, "4": 1, "2": None}
