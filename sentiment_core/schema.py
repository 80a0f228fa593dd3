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
