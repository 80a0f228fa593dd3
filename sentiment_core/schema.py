"""The canonical tweet and reject schemas: defined once, used by every reader and writer.

Readers produce plain dicts with exactly these keys (pure Python, testable without Spark);
the Spark side builds its schemas from the same lists.
"""
from __future__ import annotations

# (name, arrow/spark type name, nullable)
TWEET_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("tweet_id", "string", False),
    ("created_at", "timestamp", False),  # UTC
    ("dt", "date", False),  # UTC date of created_at: the output partition
    ("user", "string", True),
    ("lang", "string", True),
    ("text", "string", False),  # full text: extended / retweeted text resolved
    ("is_retweet", "boolean", False),
    ("source_file", "string", False),
)
TWEET_COLUMNS = tuple(f[0] for f in TWEET_FIELDS)

REJECT_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("raw", "string", True),  # the raw record, truncated to MAX_RAW_CHARS
    ("source_file", "string", False),
    ("line_no", "long", True),  # 1-based line in the (decompressed) file, when known
    ("reason", "string", False),
    ("detected_at", "timestamp", False),
)
REJECT_COLUMNS = tuple(f[0] for f in REJECT_FIELDS)

# Delete notices (v1.1 {"delete": ...}): the nightly job removes these ids from the output.
DELETE_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("tweet_id", "string", False),
    ("user_id", "string", True),
    ("deleted_at", "timestamp", True),
    ("source_file", "string", False),
)
DELETE_COLUMNS = tuple(f[0] for f in DELETE_FIELDS)

MAX_RAW_CHARS = 2000

# Reject reason codes (stable strings: users filter on them).
MALFORMED_JSON = "malformed_json"
BAD_FIELD_COUNT = "bad_field_count"
EMPTY_TEXT = "empty_text"
BAD_TIMESTAMP = "bad_timestamp"
MISSING_ID = "missing_id"
BAD_LABEL = "bad_label"
UNKNOWN_RECORD = "unknown_record"
TRUNCATED_FILE = "truncated_file"
UNREADABLE_FILE = "unreadable_file"
UNBALANCED_QUOTE = "unbalanced_quote"  # a CSV quote never closed: the line is a reject, the rows after it are read
INVALID_UTF8 = "invalid_utf8"  # informational only: such rows are kept, bad bytes replaced

REASONS = (MALFORMED_JSON, BAD_FIELD_COUNT, EMPTY_TEXT, BAD_TIMESTAMP, MISSING_ID, BAD_LABEL,
           UNKNOWN_RECORD, TRUNCATED_FILE, UNREADABLE_FILE)


def truncate_raw(raw: str | bytes | None) -> str | None:
    """Bound a raw record for the rejects table."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + "...[truncated]"


def spark_ddl(fields) -> str:
    """Spark DDL string for one of the field lists above."""
    return ", ".join(f"`{n}` {t}" for n, t, _ in fields)


# A tweet table's fields (Parquet, CSV with a header, JSON Lines of other tools' tweet objects such
# as snscrape's): each from the first of these names the table has, unless the user names it
# (--id-col, ...). This job's own names first, then the Twitter API's, twarc-csv's (``twarc2 csv``:
# id, created_at, text, author.username, lang) and snscrape's (id, date, rawContent, user). Names are
# compared without case, spaces, ``_`` and ``-`` (:func:`column_key`): a dataset's ``Tweet Id``,
# ``Datetime``, ``Text`` are found too.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("tweet_id", "id", "id_str", "ids"),  # ids: Sentiment140's name, in the copies given a header
    "text": ("text", "full_text", "tweet", "content", "rawContent"),
    "time": ("created_at", "date", "datetime", "timestamp"),
    "user": ("user", "author.username", "username", "screen_name", "user_screen_name"),
    "lang": ("lang", "language"),
    "retweet": ("is_retweet",),
}


def column_key(name: str) -> str:
    """A column name as TABLE_COLUMNS compares it: lower case, without spaces, ``_`` and ``-``."""
    return "".join(c for c in name.lower() if c not in " _-")


def first_column(columns, names) -> str | None:
    """The first of ``names`` that ``columns`` has, compared by :func:`column_key`, as ``columns``
    spells it; None where it has none."""
    by_key: dict[str, str] = {}
    for c in columns:
        by_key.setdefault(column_key(c), c)
    return next((by_key[k] for k in map(column_key, names) if k in by_key), None)


def find_column(columns, field: str) -> str | None:
    """The column of ``columns`` (names) that gives ``field`` (a key of TABLE_COLUMNS), or None."""
    return first_column(columns, TABLE_COLUMNS[field])

