"""The Sentiment140 CSV format, exactly as published.

Six double-quoted fields, no header, one record per line:
``"target","ids","date","flag","user","text"`` with target 0 (negative), 2 (neutral), 4 (positive).
The text itself may hold commas and double quotes, which the file does not escape, so a line is
split on the five ``","`` separators from the left, not by a general CSV parser. The bytes are
UTF-8 (a few invalid sequences exist in the full file): they are decoded as UTF-8 with invalid
bytes replaced by U+FFFD, never as latin-1, which would garble every non-ASCII character.
"""
from __future__ import annotations

import datetime as _dt

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
