"""Pure-Python readers: tweet archive files -> canonical tweets, rejects and delete notices.

One file in, a stream of ``(kind, dict)`` records out, where kind is ``"tweet"``, ``"reject"`` or
``"delete"`` and the dict has exactly the keys of ``schema.TWEET_COLUMNS``, ``REJECT_COLUMNS`` or
``DELETE_COLUMNS``. Nothing vanishes silently: every non-blank line yields at least one record
(blank lines are not records). Bad content never raises inside :func:`read_file`; it becomes a
reject with a reason code from :mod:`sentiment_core.schema`.

Formats (``FORMATS``):

- ``sentiment140``: the Sentiment140 CSV (see :mod:`sentiment_core.sentiment140`), used as a tweet
  source for scoring; its label column is ignored.
- ``twitter-v1``: Twitter API v1.1 JSON Lines (the Internet Archive "archiveteam-twitter-stream"
  grab): tweets, ``{"delete": ...}`` notices and other stream control messages; search API
  responses (``{"statuses": [...]}``) give their statuses; an account's own archive
  (``data/tweets.js``: ``window.YTD.tweets.part0 = [{"tweet": {...}}, ...]``) gives its tweets.
- ``twitter-v2``: Twitter API v2 JSON as written by twarc2: response pages (``data`` list +
  ``includes``), filtered-stream messages (``data`` object) and flattened tweets (twarc-csv
  ``flat.jsonl``: one tweet object per line with ``author`` and embedded referenced tweets);
  compliance events that a tweet is deleted (a batch compliance job's output, the compliance
  stream's ``data.delete``) are delete notices, as v1.1's ``{"delete"}`` are.
- ``json``: JSON Lines of other tools' tweet objects, such as snscrape's (``snscrape --jsonl``:
  ``id``, ``date``, ``rawContent``, ``user.username``, ``retweetedTweet``) and dataset exports: the
  fields are found by name as in a table (``schema.TABLE_COLUMNS``).

A file may also be one JSON document instead of JSON Lines: an array of tweets (on one line or
pretty-printed) or pretty-printed objects one after another (a saved API response); each value
then counts as a line does (:func:`_document_values`). A line is read in pieces of at most a few
MB (:func:`_iter_split`), so a document that is one long line streams too.

Files may be plain, gzip, bzip2, xz or zstd (recognised by magic bytes, whatever the extension;
zstd frames with windows up to 2 GB, as ``zstd --long=31`` writes them), local or behind a URI
with a scheme (``hdfs://``, ``s3://``, ... through ``pyarrow.fs``, imported lazily; ``file://`` is
read locally). A byte range of a plain file can be read on its own, with the file's own line
numbers (:func:`open_lines`), and so can a member of an uncompressed tar where it lies, or a member
of a zip archive (:func:`archive_members`). JSON is parsed by orjson, with the standard library's
``json`` for what orjson refuses. Besides orjson, only the standard library is imported at module
import time (zstandard when a zstd file is opened).
"""
from __future__ import annotations

import bisect
import bz2
import datetime as _dt
import functools
import gzip
import io
import itertools
import json
import lzma
import os
import re
import zlib
from typing import Callable, Iterable, Iterator
from urllib.parse import unquote, urlparse

import orjson

from sentiment_core import schema
from sentiment_core import sentiment140 as s140

Record = tuple[str, dict]

FORMATS = ("sentiment140", "twitter-v1", "twitter-v2", "json")

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_CHUNK = 1 << 20
# How many non-blank lines read_file looks at to recognise a file's format before giving up.
_DETECT_MAX_LINES = 100

# v1.1 streaming API control messages: they are counted as unknown_record rejects.
_V1_CONTROL_KEYS = frozenset({
    "limit", "scrub_geo", "status_withheld", "user_withheld", "disconnect", "warning",
    "friends", "friends_str", "event", "for_user", "control", "user_update",
})
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------

def _tweet(tweet_id: str, created_at: _dt.datetime, user, lang, text: str, is_retweet: bool,
           source_file: str) -> Record:
    return ("tweet", {
        "tweet_id": tweet_id,
        "created_at": created_at,
        "dt": created_at.date(),
        "user": user if isinstance(user, str) else None,
        "lang": lang if isinstance(lang, str) else None,
        "text": text,
        "is_retweet": bool(is_retweet),
        "source_file": source_file,
    })


def _reject(raw, source_file: str, line_no: int | None, reason: str) -> Record:
    return ("reject", {
        "raw": schema.truncate_raw(raw),
        "source_file": source_file,
        "line_no": line_no,
        "reason": reason,
        "detected_at": _dt.datetime.now(_UTC),
    })


def _delete(tweet_id: str, user_id, deleted_at, source_file: str) -> Record:
    return ("delete", {
        "tweet_id": tweet_id,
        "user_id": user_id,
        "deleted_at": deleted_at,
        "source_file": source_file,
    })


# --------------------------------------------------------------------------------------------
# small parsers
# --------------------------------------------------------------------------------------------

def _id_str(obj: dict, str_key: str, int_key: str) -> str | None:
    """A non-empty id string from ``obj[str_key]``, else ``str(obj[int_key])``, else None."""
    value = obj.get(str_key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    value = obj.get(int_key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_v1_date(value) -> _dt.datetime | None:
    """``Fri Jan 01 07:29:00 +0000 2021`` -> aware UTC datetime, or None (locale-independent)."""
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) != 6 or parts[1] not in _MONTHS:
        return None
    _, mon, day, hms, offset, year = parts
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        if len(offset) != 5 or offset[0] not in "+-":
            return None
        sign = 1 if offset[0] == "+" else -1
        delta = _dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        local = _dt.datetime(int(year), _MONTHS[mon], int(day), h, m, s,
                             tzinfo=_dt.timezone(sign * delta))
    except ValueError:
        return None
    return local.astimezone(_UTC)


def parse_iso_date(value) -> _dt.datetime | None:
    """``2021-04-08T17:29:03.000Z`` -> aware UTC datetime (naive values are taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


def _ms_to_utc(value) -> _dt.datetime | None:
    if isinstance(value, bool):
        return None
    try:  # integer arithmetic: exact milliseconds, no float rounding
        return _EPOCH + _dt.timedelta(milliseconds=int(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _nonblank(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_lone_surrogates(value):
    """``value`` (parsed JSON) with every lone surrogate in its strings replaced by U+FFFD: UTF-8,
    so Arrow and Parquet, cannot hold one, and a task that met one would fail the job."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_no_lone_surrogates(k): _no_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_lone_surrogates(v) for v in value]
    return value


def _json(text: str):
    """``json.loads(text)``, by orjson where it can (a v1.1 tweet in about half the time). What
    orjson refuses and ``json`` takes goes to ``json``: NaN, and a lone surrogate escape (a text
    cut inside an emoji, ``"\\ud83d"``), which becomes U+FFFD. An integer over 64 bits is a float
    in orjson; no id or count of the Twitter APIs reaches one."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _no_lone_surrogates(json.loads(text))


def _load_json(line: str, source_file: str, line_no: int):
    """(obj, None) or (None, reject)."""
    try:
        return _json(line), None
    except (ValueError, RecursionError):
        return None, _reject(line, source_file, line_no, schema.MALFORMED_JSON)


# --------------------------------------------------------------------------------------------
# Twitter API v1.1
# --------------------------------------------------------------------------------------------

def _v1_text(status: dict) -> str | None:
    ext = status.get("extended_tweet")
    if isinstance(ext, dict):
        text = _nonblank(ext.get("full_text"))
        if text is not None:
            return text
    return _nonblank(status.get("full_text")) or _nonblank(status.get("text"))


def _looks_like_v1_tweet(obj: dict) -> bool:
    return any(k in obj for k in ("id_str", "id", "created_at", "text", "full_text",
                                  "extended_tweet", "retweeted_status"))


def parse_v1_line(line: str, source_file: str, line_no: int) -> list[Record]:
    """One line of v1.1 JSON Lines -> [tweet] / [delete] / [reject]; [] for a blank line. A search
    API response (``{"statuses": [...], "search_metadata": ...}``) gives a record per status."""
    if not line.strip():
        return []
    obj, bad = _load_json(line, source_file, line_no)
    if bad is not None:
        return [bad]
    if isinstance(obj, dict) and isinstance(obj.get("statuses"), list) and "id_str" not in obj:
        if not obj["statuses"]:  # an empty page: counted, not dropped
            return [_reject(line, source_file, line_no, schema.UNKNOWN_RECORD)]
        return [rec for status in obj["statuses"]
                for rec in _v1_records(status, lambda s=status: orjson.dumps(s).decode(), source_file, line_no)]
    return _v1_records(obj, lambda: line, source_file, line_no)


def _unwrapped(obj):
    """An account archive's ``{"tweet": {...}}`` as the tweet in it; anything else as it is."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get("tweet"), dict):
        return obj["tweet"]
    return obj


def _v1_records(obj, raw: Callable[[], str], source_file: str, line_no: int) -> list[Record]:
    """One v1.1 object -> [tweet] / [delete] / [reject]; ``raw()`` is its text, for a reject."""
    obj = _unwrapped(obj)
    if not isinstance(obj, dict):
        return [_reject(raw(), source_file, line_no, schema.UNKNOWN_RECORD)]

    if "delete" in obj:
        notice = obj["delete"]
        status = notice.get("status") if isinstance(notice, dict) else None
        if not isinstance(status, dict):
            return [_reject(raw(), source_file, line_no, schema.UNKNOWN_RECORD)]
        tweet_id = _id_str(status, "id_str", "id")
        if tweet_id is None:
            return [_reject(raw(), source_file, line_no, schema.MISSING_ID)]
        user_id = _id_str(status, "user_id_str", "user_id")
        deleted_at = _ms_to_utc(notice.get("timestamp_ms", obj.get("timestamp_ms")))
        return [_delete(tweet_id, user_id, deleted_at, source_file)]

    if not _looks_like_v1_tweet(obj):
        return [_reject(raw(), source_file, line_no, schema.UNKNOWN_RECORD)]

    tweet_id = _id_str(obj, "id_str", "id")
    if tweet_id is None:
        return [_reject(raw(), source_file, line_no, schema.MISSING_ID)]
    created_at = parse_v1_date(obj.get("created_at"))
    if created_at is None:
        return [_reject(raw(), source_file, line_no, schema.BAD_TIMESTAMP)]

    retweeted = obj.get("retweeted_status")
    is_retweet = isinstance(retweeted, dict)
    text = (_v1_text(retweeted) if is_retweet else None) or _v1_text(obj)
    if text is None:
        return [_reject(raw(), source_file, line_no, schema.EMPTY_TEXT)]

    user = obj.get("user")
    screen_name = user.get("screen_name") if isinstance(user, dict) else None
    return [_tweet(tweet_id, created_at, screen_name, obj.get("lang"), text, is_retweet,
                   source_file)]


# --------------------------------------------------------------------------------------------
# Twitter API v2 (twarc2)
# --------------------------------------------------------------------------------------------

def _v2_text(tweet) -> str | None:
    if not isinstance(tweet, dict):
        return None
    note = tweet.get("note_tweet")
    if isinstance(note, dict):
        text = _nonblank(note.get("text"))
        if text is not None:
            return text
    return _nonblank(tweet.get("text"))


def _v2_tweet(item, users: dict, included: dict, raw_line: str, source_file: str,
              line_no: int, in_page: bool) -> Record:
    def reject(reason: str) -> Record:
        raw = raw_line
        if in_page:  # the tweet itself says more than the first 2000 characters of the page
            try:
                raw = json.dumps(item, ensure_ascii=False)
            except (TypeError, ValueError):
                pass
        return _reject(raw, source_file, line_no, reason)

    if not isinstance(item, dict):
        return reject(schema.UNKNOWN_RECORD)
    tweet_id = _id_str(item, "id", "id")
    if tweet_id is None:
        return reject(schema.MISSING_ID)
    created_at = parse_iso_date(item.get("created_at"))
    if created_at is None:
        return reject(schema.BAD_TIMESTAMP)

    author = item.get("author")
    if isinstance(author, dict):  # flattened (twarc-csv) tweet
        user = author.get("username")
    else:
        user = users.get(item.get("author_id"))

    is_retweet = False
    text = None
    refs = item.get("referenced_tweets")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("type") == "retweeted":
            is_retweet = True
            ref_id = ref.get("id")
            target = included.get(str(ref_id)) if ref_id is not None else None
            if target is None and "text" in ref:  # flattened: the tweet is embedded
                target = ref
            text = _v2_text(target)
            break
    if text is None:
        text = _v2_text(item)
    if text is None:
        return reject(schema.EMPTY_TEXT)
    return _tweet(tweet_id, created_at, user, item.get("lang"), text, is_retweet, source_file)


def _object_line(line: str, source_file: str, line_no: int) -> tuple[dict | None, list[Record]]:
    """A line that should hold one JSON object: (the object, []), or (None, what the line gives
    instead: nothing for a blank line, a reject for malformed JSON or any other value)."""
    if not line.strip():
        return None, []
    obj, bad = _load_json(line, source_file, line_no)
    if bad is not None:
        return None, [bad]
    if not isinstance(obj, dict):
        return None, [_reject(line, source_file, line_no, schema.UNKNOWN_RECORD)]
    return obj, []


def _compliance(event: dict, raw: str, source_file: str, line_no: int) -> Record:
    """A v2 compliance event about a tweet -> a delete notice, or a reject when it is not one: a
    batch compliance job's line (``{"id", "action": "delete", "created_at", "reason"}``) or a
    compliance stream message's ``data.delete`` (``{"tweet": {"id", "author_id"}, "event_at"}``)."""
    if "action" in event:
        if event.get("action") != "delete":
            return _reject(raw, source_file, line_no, schema.UNKNOWN_RECORD)
        tweet_id, user_id, at = _id_str(event, "id", "id"), None, event.get("created_at")
    else:
        tweet = event.get("tweet") if isinstance(event.get("tweet"), dict) else {}
        tweet_id, user_id, at = _id_str(tweet, "id", "id"), _id_str(tweet, "author_id", "author_id"), event.get("event_at")
    if tweet_id is None:
        return _reject(raw, source_file, line_no, schema.MISSING_ID)
    return _delete(tweet_id, user_id, parse_iso_date(at), source_file)


def _is_compliance(obj: dict) -> bool:
    return isinstance(obj.get("action"), str) and "id" in obj and "text" not in obj


def parse_v2_line(line: str, source_file: str, line_no: int) -> list[Record]:
    """One line of twarc2 output -> one record per tweet (page / stream message / flat tweet); a
    compliance event that a tweet is deleted -> a delete notice (:func:`_compliance`)."""
    obj, other = _object_line(line, source_file, line_no)
    if obj is None:
        return other
    if _is_compliance(obj):
        return [_compliance(obj, line, source_file, line_no)]
    if isinstance(obj.get("data"), dict) and isinstance(obj["data"].get("delete"), dict):
        return [_compliance(obj["data"]["delete"], line, source_file, line_no)]

    if "data" in obj:  # response page (data: list) or filtered-stream message (data: object)
        data = obj["data"]
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not data:
            # errors-only or empty page: counted, not dropped
            return [_reject(line, source_file, line_no, schema.UNKNOWN_RECORD)]
        includes = obj.get("includes") if isinstance(obj.get("includes"), dict) else {}
        users = {u.get("id"): u.get("username")
                 for u in includes.get("users") or () if isinstance(u, dict)}
        included = {str(t.get("id")): t
                    for t in includes.get("tweets") or () if isinstance(t, dict)}
        return [_v2_tweet(item, users, included, line, source_file, line_no, in_page=True)
                for item in data]

    if "id" in obj and ("text" in obj or "note_tweet" in obj):  # flattened tweet
        return [_v2_tweet(obj, {}, {}, line, source_file, line_no, in_page=False)]
    return [_reject(line, source_file, line_no, schema.UNKNOWN_RECORD)]


# --------------------------------------------------------------------------------------------
# Sentiment140 CSV
# --------------------------------------------------------------------------------------------

def parse_sentiment140_line(line: str, source_file: str, line_no: int) -> list[Record]:
    """One Sentiment140 CSV line -> [tweet] or [reject]; [] for a blank line. Label ignored."""
    if not line.strip():
        return []
    fields = s140.split_line(line)
    if fields is None:
        return [_reject(line, source_file, line_no, schema.BAD_FIELD_COUNT)]
    if line_no == 1 and tuple(f.strip().lower() for f in fields) == s140.HEADER:
        return []  # a mirror's header line, quoted as pandas' QUOTE_ALL writes it: not a record
    tweet_id = fields[s140.IDS].strip()
    if not tweet_id:
        return [_reject(line, source_file, line_no, schema.MISSING_ID)]
    created_at = s140.parse_date(fields[s140.DATE])
    if created_at is None:
        return [_reject(line, source_file, line_no, schema.BAD_TIMESTAMP)]
    text = fields[s140.TEXT]
    if not text.strip():
        return [_reject(line, source_file, line_no, schema.EMPTY_TEXT)]
    return [_tweet(tweet_id, created_at, fields[s140.USER] or None, None, text, False,
                   source_file)]


# --------------------------------------------------------------------------------------------
# other tools' tweet objects (snscrape, dataset exports): fields found by name
# --------------------------------------------------------------------------------------------

_FIELDS_OF: dict[tuple, dict] = {}  # (an object's keys, names given) -> the key of each field (a file's objects share them)


def _get(obj: dict, key: str):
    """``obj[key]``, or the value at a dotted path into nested objects (``user.username``)."""
    if key in obj or "." not in key:
        return obj.get(key)
    for part in key.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _fields(obj: dict, columns: tuple = ()) -> dict:
    """The key (or dotted path) of each TABLE_COLUMNS field in ``obj``, None where absent:
    found by name, or as named in ``columns`` (the jobs' --id-col ...: (field, name) pairs)."""
    cache = (tuple(obj), columns)
    found = _FIELDS_OF.get(cache)
    if found is None:
        if len(_FIELDS_OF) > 1024:
            _FIELDS_OF.clear()
        named = dict(columns)
        found = _FIELDS_OF[cache] = {f: named.get(f) or schema.find_column(cache[0], f) for f in schema.TABLE_COLUMNS}
    return found


def _object_time(value) -> _dt.datetime | None:
    """ISO 8601, the v1.1 API's form or Sentiment140's; a number as seconds (or milliseconds past
    1e11) since 1970."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _ms_to_utc(value if abs(value) > 1e11 else value * 1000)
    return parse_iso_date(value) or parse_v1_date(value) or (s140.parse_date(value) if isinstance(value, str) else None)


def _object_text(obj: dict, columns: tuple = ()) -> str | None:
    key = _fields(obj, columns)["text"]
    return _nonblank(_get(obj, key)) if key is not None else None


def parse_json_line(line: str, source_file: str, line_no: int, columns: tuple = ()) -> list[Record]:
    """One JSON object of another tool's tweets -> [tweet] / [reject]; [] for a blank line. A
    retweet (snscrape's ``retweetedTweet``) takes the retweeted tweet's text and is marked.
    ``columns``: (field, key or dotted path) pairs that name fields not found by name."""
    obj, other = _object_line(line, source_file, line_no)
    if obj is None:
        return other
    keys = _fields(obj, columns)
    if keys["text"] is None and keys["id"] is None:
        return [_reject(line, source_file, line_no, schema.UNKNOWN_RECORD)]
    tweet_id = _get(obj, keys["id"]) if keys["id"] else None
    tweet_id = _nonblank(str(tweet_id)) if isinstance(tweet_id, (str, int)) and not isinstance(tweet_id, bool) else None
    if tweet_id is None:
        return [_reject(line, source_file, line_no, schema.MISSING_ID)]
    created_at = _object_time(_get(obj, keys["time"])) if keys["time"] else None
    if created_at is None:
        return [_reject(line, source_file, line_no, schema.BAD_TIMESTAMP)]
    retweeted = obj.get("retweetedTweet")
    retweeted = retweeted if isinstance(retweeted, dict) else None
    is_retweet = retweeted is not None or (keys["retweet"] is not None and _get(obj, keys["retweet"]) is True)
    text = (_object_text(retweeted) if retweeted is not None else None) or _object_text(obj, columns)
    if text is None:
        return [_reject(line, source_file, line_no, schema.EMPTY_TEXT)]
    user = _get(obj, keys["user"]) if keys["user"] else None
    if isinstance(user, dict):
        user = user.get("username") or user.get("screen_name")
    return [_tweet(tweet_id, created_at, user, _get(obj, keys["lang"]) if keys["lang"] else None, text, is_retweet,
                   source_file)]


_PARSERS: dict[str, Callable[[str, str, int], list[Record]]] = {
    "sentiment140": parse_sentiment140_line,
    "twitter-v1": parse_v1_line,
    "twitter-v2": parse_v2_line,
    "json": parse_json_line,
}


# --------------------------------------------------------------------------------------------
# format detection
# --------------------------------------------------------------------------------------------

def _classify(line: str, columns: tuple = ()) -> str | None:
    """The format one line belongs to, or None when it does not tell. ``columns``: as in
    :func:`parse_json_line`."""
    text = line.strip().lstrip("\ufeff")
    if not text:
        return None
    if text[0] == '"':  # six quoted fields, the first a Sentiment140 target (not a quoted CSV header)
        fields = s140.split_line(text)
        return "sentiment140" if fields is not None and fields[s140.TARGET] in s140.TARGET_TO_LABEL else None
    if text[0] != "{":
        return None
    try:
        obj = _unwrapped(_json(text))
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("data"), (list, dict)):
        return "twitter-v2"
    if "id" in obj and "text" in obj and (
            "author_id" in obj or "edit_history_tweet_ids" in obj or "author" in obj
            or parse_iso_date(obj.get("created_at")) is not None):
        return "twitter-v2"
    if ("id_str" in obj or "delete" in obj or isinstance(obj.get("statuses"), list)
            or parse_v1_date(obj.get("created_at")) is not None
            or (obj.keys() and obj.keys() <= _V1_CONTROL_KEYS)):
        return "twitter-v1"
    if "errors" in obj and ("meta" in obj or "includes" in obj or "title" in obj):
        return "twitter-v2"
    if _is_compliance(obj):  # a batch compliance job's output
        return "twitter-v2"
    fields = _fields(obj, columns)
    if fields["id"] is not None and fields["text"] is not None and fields["time"] is not None:
        return "json"  # another tool's tweet objects (snscrape, a dataset export)
    return None


def detect_format(path: str, first_line: str) -> str:
    """The format of ``path`` from its first non-blank line; ValueError when it cannot tell."""
    fmt = _classify(first_line)
    if fmt is None:
        preview = first_line.strip()[:120]
        raise ValueError(
            f"cannot detect the format of {path!r} from its first line {preview!r}: expected a "
            f"Sentiment140 CSV line (6 double-quoted fields) or a Twitter v1.1 / v2 JSON object; "
            f"pass fmt= one of {FORMATS}")
    return fmt


# --------------------------------------------------------------------------------------------
# opening files
# --------------------------------------------------------------------------------------------

class _Wrapped(io.RawIOBase):
    """A readable raw stream over another stream, which it closes (and reads from as it is)."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self._stream.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class _Prefixed(_Wrapped):
    """A non-seekable stream with bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, stream):
        super().__init__(stream)
        self._prefix = prefix

    def readinto(self, buf) -> int:
        if self._prefix:
            n = min(len(buf), len(self._prefix))
            buf[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return super().readinto(buf)


class _Closing(_Wrapped):
    """A stream that also closes ``others`` (the zip archive and file a member is read from)."""

    def __init__(self, stream, *others):
        super().__init__(stream)
        self._others = others

    def close(self) -> None:
        try:
            super().close()
        finally:
            for other in self._others:
                other.close()


def _zstd_frames(raw) -> Iterator[bytes]:
    """zstd frames one after another (pzstd and ``zstd -T`` write several) decompressed, with windows
    up to ZSTD_MAX_WINDOW, by :func:`_streams`: a stream that ends inside a frame raises EOFError
    and a damaged one OSError, as gzip and bzip2 do (zstandard's own stream reader stops at a cut
    without a word)."""
    import zstandard  # lazy: only for zstd files

    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    try:
        yield from _streams(raw, dctx.decompressobj)
    except zstandard.ZstdError as exc:
        raise OSError(f"zstd: {exc}") from exc


def _scheme(path: str) -> str:
    if "://" not in path:
        return ""
    scheme = path.split("://", 1)[0]
    # a Windows drive ("C:\\...") is not a scheme; schemes are letters, digits, + - .
    if len(scheme) < 2 or not all(c.isalnum() or c in "+-." for c in scheme):
        return ""
    return scheme.lower()


def _local_path(path: str) -> str | None:
    """The local path for a plain path or a file:// URI; None for other schemes."""
    scheme = _scheme(path)
    if scheme == "":
        return path
    if scheme == "file":
        parsed = urlparse(path)
        return unquote(parsed.path)
    return None


def _open_raw(path: str, seekable: bool = False):
    """A binary stream of the file's stored bytes (no decompression); ``seekable``: random access
    also behind a URI."""
    local = _local_path(path)
    if local is not None:
        return open(local, "rb")
    from pyarrow import fs as pafs  # lazy: only for non-local URIs

    filesystem, fs_path = pafs.FileSystem.from_uri(path)
    if seekable:
        return filesystem.open_input_file(fs_path)
    return filesystem.open_input_stream(fs_path, compression=None)


def file_size(path: str) -> int:
    """The stored size of a file in bytes (local path or URI)."""
    local = _local_path(path)
    if local is not None:
        return os.path.getsize(local)
    from pyarrow import fs as pafs

    filesystem, fs_path = pafs.FileSystem.from_uri(path)
    return filesystem.get_file_info(fs_path).size


_GZIP, _BZIP2, _XZ, _ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"
_MAGIC_BYTES = 6  # the longest of them
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member; an empty zip
# the largest zstd window a frame may ask for: zstd --long=31 (the default limit is 128 MB)
ZSTD_MAX_WINDOW = 1 << 31


def _compressed_magic(magic: bytes) -> bool:
    return magic.startswith((_GZIP, _BZIP2, _XZ, _ZSTD))


def _tar_magic(head: bytes) -> bool:
    """The first bytes of a file are a tar header (the ustar magic at offset 257)."""
    return head[257:262] == b"ustar"


_KINDS = ((_GZIP, "gzip"), (_BZIP2, "bzip2"), (_XZ, "xz"), (_ZSTD, "zstd")) + tuple((z, "zip") for z in _ZIP)


def file_kind(path: str) -> str | None:
    """What a file's first bytes say it is, from one read: "gzip", "bzip2", "xz", "zstd", "zip",
    "tar" (uncompressed), or None (plain lines, as far as the magic bytes go)."""
    with _open_raw(path) as raw:
        head = raw.read(262)
    kind = next((k for magic, k in _KINDS if head.startswith(magic)), None)
    return kind or ("tar" if _tar_magic(head) else None)


def is_bzip2(path: str) -> bool:
    """A bzip2 file (by its magic bytes): one that can be read by block ranges (:func:`open_lines`)."""
    return file_kind(path) == "bzip2"


def is_compressed(path: str) -> bool:
    """Whether the file is compressed (gzip, bzip2, xz or zstd, by its magic bytes, as the readers
    decide) or a zip archive: either way a byte range of it is not a range of its lines."""
    return file_kind(path) not in (None, "tar")


class _Slice(_Wrapped):
    """Bytes [offset, offset + size) of a seekable stream, as a stream of their own (a tar member)."""

    def __init__(self, stream, offset: int, size: int):
        super().__init__(stream)
        self._offset, self._size, self._pos = offset, size, 0
        stream.seek(offset)

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + pos))
        self._stream.seek(self._offset + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:
        want = min(len(buf), self._size - self._pos)
        if want <= 0:
            return 0
        data = self._stream.read(want)
        n = len(data)
        buf[:n] = data
        self._pos += n
        return n


TAR_MEMBER_SEP = "!/"  # source_file of an archive's member: "<tar or zip path>!/<member name>"


def table_separator(name: str, header: str) -> str:
    """A CSV/TSV table's field separator: a tab for ``*.tsv`` / ``*.tab``; else a comma, unless the
    header line (outside its quoted names) has none and uses ``;`` (Excel's CSV where the decimal
    mark is a comma), a tab or ``|``."""
    base = name.lower().rsplit("/", 1)[-1]
    if ".tsv" in base or ".tab" in base:
        return "\t"
    bare = re.sub(r'"[^"]*"', "", header)
    if "," in bare:
        return ","
    counts = {sep: bare.count(sep) for sep in (";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def member_path(archive: str, name: str) -> str:
    """How an archive's member is named, as a source file and as training data: ``<archive>!/<name>``."""
    return f"{archive}{TAR_MEMBER_SEP}{name}"
ZIP_MEMBER = -1  # the offset of a zip member in a member tuple: it is opened by name, not where it lies


def is_plain_tar(path: str) -> bool:
    """An uncompressed tar archive (its members can be read where they lie)."""
    return file_kind(path) == "tar"


def _visible(name: str) -> bool:
    return not any(_hidden(part) for part in name.split("/") if part)


def tar_members(path: str) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of the regular files in a plain tar archive, by name; names with a
    hidden part ('.' or '_', such as macOS '._' files) are left out, as in directory listings."""
    import tarfile

    with _open_raw(path, seekable=True) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
        found = [(m.name, m.offset_data, m.size) for m in tar.getmembers() if m.isfile() and _visible(m.name)]
    return sorted(found)


def is_zip(path: str) -> bool:
    """A zip archive (by its first bytes), such as the Sentiment140 download or a Kaggle dataset."""
    return file_kind(path) == "zip"


def zip_members(path: str) -> list[tuple[str, int, int]]:
    """(name, ZIP_MEMBER, uncompressed size) of the files in a zip archive, by name, hidden names
    ('.' or '_', such as macOS '__MACOSX/') left out: each is read as a file of its own."""
    import zipfile

    with _open_raw(path, seekable=True) as raw, zipfile.ZipFile(raw) as archive:
        found = [(m.filename, ZIP_MEMBER, m.file_size) for m in archive.infolist()
                 if not m.is_dir() and _visible(m.filename)]
    return sorted(found)


def archive_members(path: str) -> list[tuple[str, int, int]] | None:
    """The members of a plain tar (:func:`tar_members`) or a zip (:func:`zip_members`) archive,
    each read as a file of its own; None for any other file."""
    kind = file_kind(path)
    return tar_members(path) if kind == "tar" else zip_members(path) if kind == "zip" else None


def _seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):  # a member of a tar read as a stream asks its stream
        return False


def _decompressed(raw, magic: bytes):
    """``raw`` decompressed as its magic bytes say (itself when they name no compression)."""
    if magic.startswith(_GZIP):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(_BZIP2):
        return io.BufferedReader(_Decoded(_bz2_decoded(raw), raw), buffer_size=_CHUNK)
    if magic.startswith(_XZ):
        return io.BufferedReader(_Decoded(_streams(raw, lzma.LZMADecompressor, padding=b"\0"), raw), buffer_size=_CHUNK)
    if magic.startswith(_ZSTD):
        return io.BufferedReader(_Decoded(_zstd_frames(raw), raw), buffer_size=_CHUNK)
    return raw


def _open_zip_member(raw, name: str):
    """The stored (possibly deflated) bytes of zip member ``name``, as a stream that closes ``raw``."""
    import zipfile

    archive = zipfile.ZipFile(raw)
    try:
        return _Closing(archive.open(name), archive, raw)
    except BaseException:
        archive.close()
        raise


def open_data(path: str, member: tuple[str, int, int] | None = None):
    """A file's bytes as a binary stream, decompressed when it is gzip, bzip2, xz or zstd (by its
    first bytes), or those of its archive member (:func:`archive_members`); the training data
    readers and the scoring job's CSV tweet tables are opened with it. A stream that breaks off
    raises one of STREAM_ERRORS."""
    return _open_decompressed(path, member)


def _open_decompressed(path: str, member: tuple[str, int, int] | None = None):
    """The decompressed bytes of a file, or of its archive member ``(name, offset, size)``
    (:func:`archive_members`): a tar member where it lies, a zip member by name."""
    raw = _open_raw(path, seekable=member is not None)
    try:
        if member is not None and member[1] == ZIP_MEMBER:
            raw = io.BufferedReader(_open_zip_member(raw, member[0]), buffer_size=_CHUNK)
        elif member is not None:
            raw = io.BufferedReader(_Slice(raw, *member[1:]), buffer_size=_CHUNK)
        magic = raw.read(_MAGIC_BYTES)
        if _seekable(raw):
            raw.seek(0)
        else:
            raw = io.BufferedReader(_Prefixed(magic, raw), buffer_size=_CHUNK)
        return _decompressed(raw, magic)
    except BaseException:
        raw.close()
        raise


class _Piece(bytes):
    """A piece of a line longer than :data:`_PIECE` that is not its last: :func:`_iter_split` gives
    such a line as several items with the same line number, so that a file that is one long line (a
    JSON array dumped without newlines) streams instead of being held whole."""


_PIECE = 4 << 20  # bytes of a line held before a piece of it is given


def _utf8_cut(data: bytes) -> int:
    """Where a piece of ``data`` ends so that it cuts no UTF-8 sequence: before the lead byte of a
    sequence that runs past the end, else at the end."""
    i = len(data) - 1
    while i > 0 and len(data) - i < 4 and (data[i] & 0xC0) == 0x80:  # back to the lead byte
        i -= 1
    lead = data[i]
    need = 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2 if lead >= 0xC0 else 1
    return i if i + need > len(data) else len(data)


def _iter_split(stream, pieces: bool = False) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the line end) of each line of a stream. ``pieces``: a line
    longer than _PIECE comes as _Piece items and then its rest, all with its number; without, whole.
    Each chunk read is split once, so a long line costs its length, not its length squared."""
    read = getattr(stream, "read1", None) or stream.read
    parts: list[bytes] = []  # the line not ended yet
    held = 0
    line_no = 0
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        lines = chunk.split(b"\n")
        if len(lines) == 1:
            parts.append(chunk)
            held += len(chunk)
            if pieces and held >= _PIECE:
                data = b"".join(parts)
                cut = _utf8_cut(data)
                yield line_no + 1, _Piece(data[:cut])
                parts, held = [data[cut:]], len(data) - cut
            continue
        if parts:
            parts.append(lines[0])
            lines[0] = b"".join(parts)
        tail = lines.pop()
        parts, held = [tail], len(tail)
        for line in lines:
            line_no += 1
            yield line_no, line[:-1] if line.endswith(b"\r") else line
    rest = b"".join(parts)
    if rest:
        yield line_no + 1, rest[:-1] if rest.endswith(b"\r") else rest


def _iter_range(stream, start: int, end: int, newlines_before: int) -> Iterator[tuple[int, bytes]]:
    """The lines of a seekable plain stream that start at a byte offset in [start, end)."""
    stream = io.BufferedReader(stream, buffer_size=_CHUNK) if not hasattr(stream, "peek") else stream
    line_no = newlines_before
    pos = start
    stream.seek(max(start - 1, 0))
    if start > 0:
        # the rest of the line that starts before ``start``: its range reads it. Just b"\n" when
        # a line starts exactly at ``start``; that newline is among ``newlines_before``
        skipped = stream.readline()
        pos += len(skipped) - 1
        line_no += len(skipped) > 1
    readline = stream.readline
    while pos < end:
        line = readline()
        if not line:
            break
        pos += len(line)
        line_no += 1
        if line.endswith(b"\n"):
            line = line[:-1]
        yield line_no, line[:-1] if line.endswith(b"\r") else line


# --------------------------------------------------------------------------------------------
# bzip2 by block ranges
# --------------------------------------------------------------------------------------------

# A bzip2 stream is a header ("BZh1".."BZh9"), blocks of at most 900 kB of input, each behind the
# 48-bit magic _BZ2_BLOCK and a 32-bit CRC, then _BZ2_EOS and the CRC of its blocks. The magics lie
# at any bit, not byte. Blocks decode independently, so a byte range of a large .bz2 file can be
# read on its own from the first block whose magic lies in it (as Hadoop's BZip2Codec splits them).
_BZ2_BLOCK, _BZ2_EOS = 0x314159265359, 0x177245385090
_BZ2_READ = 4 << 20  # compressed bytes read at a time


def _bit_find(data: bytes, magic: int, begin: int = 0) -> list[int]:
    """The bit offsets in ``data`` where the 48-bit ``magic`` starts, from byte ``begin``: for each
    of the 8 bit shifts, a search for its 5 whole bytes, each hit checked on all 48 bits."""
    found = []
    for shift in range(8):
        window = (magic << (8 - shift)).to_bytes(7, "big")  # the magic from bit ``shift`` of 7 bytes
        lead = 0 if shift == 0 else 1
        pattern = window[lead:6]
        i = data.find(pattern, begin + lead)
        while i != -1:
            at = i - lead
            if int.from_bytes(data[at:at + 7].ljust(7, b"\0"), "big") >> (8 - shift) & ((1 << 48) - 1) == magic:
                found.append(at * 8 + shift)
            i = data.find(pattern, i + 1)
    return sorted(found)


def _bz2_block(data: bytes, start: int, end: int) -> bytes:
    """The block at bits [start, end) of ``data``, decompressed: moved to a byte boundary (numpy)
    and closed as a stream of its own (the end magic and, for one block, its own CRC), so that
    bzip2 checks it whole. OSError / EOFError when it does not decode (a cut or damaged file)."""
    import numpy as np

    shift = start % 8
    raw = np.frombuffer(data[start // 8:end // 8 + 2], np.uint8).astype(np.uint16)
    if shift:
        raw = ((raw[:-1] << shift) | (raw[1:] >> (8 - shift))) & 0xFF
    block = raw.astype(np.uint8).tobytes()
    whole, rest = divmod(end - start, 8)
    if len(block) < 10 or len(block) * 8 < end - start:
        raise EOFError("bzip2 block cut short")
    crc = int.from_bytes(block[6:10], "big")
    tail = ((block[whole] >> (8 - rest)) if rest else 0) << 80 | _BZ2_EOS << 32 | crc
    pad = -(rest + 80) % 8
    stream = b"BZh9" + block[:whole] + (tail << pad).to_bytes((rest + 80 + pad) // 8, "big")
    try:
        return bz2.decompress(stream)
    except ValueError as exc:  # "Compressed data ended before the end-of-stream marker"
        raise EOFError(str(exc)) from exc


def _bz2_segments(raw, start: int) -> Iterator[tuple[int, bytes, int, int]]:
    """(bit offset in the file, compressed bytes, start bit, end bit in them) of each bzip2 block
    whose magic lies at or after byte ``start`` of the seekable stream ``raw``, in order, for
    :func:`_bz2_block`; compressed bytes are read as needed."""
    base = max(0, start - 8)
    raw.seek(base)
    buf = raw.read(_BZ2_READ)
    eof = len(buf) < _BZ2_READ
    scanned = 0  # the bytes of buf searched for magics already
    marks: list[tuple[int, bool]] = []  # (bit offset in buf, is a block) of the magics found
    while True:
        if scanned < len(buf):
            begin = max(0, scanned - 7)  # a magic may straddle the end of the last search
            new = [(b, True) for b in _bit_find(buf, _BZ2_BLOCK, begin)] + \
                  [(b, False) for b in _bit_find(buf, _BZ2_EOS, begin)]
            known = {m for m, _ in marks}
            marks = sorted(marks + [m for m in new if m[0] not in known])
            scanned = len(buf)
        marks = [m for m in marks if m[0] >= (start - base) * 8 or not m[1]]
        block = next((i for i, (bit, is_block) in enumerate(marks) if is_block), None)
        if block is not None and block + 1 < len(marks):  # a block and the magic after it
            bit, end = marks[block][0], marks[block + 1][0]
            at = bit // 8
            yield base * 8 + bit, buf[at:end // 8 + 2], bit - at * 8, end - at * 8
        elif block is not None and eof:  # a last block with no end magic: cut
            bit = marks[block][0]
            at = bit // 8
            yield base * 8 + bit, buf[at:], bit - at * 8, (len(buf) - at) * 8
            return
        elif eof:
            return
        else:
            more = raw.read(_BZ2_READ)
            eof = len(more) < _BZ2_READ
            buf += more
            continue
        # drop what is decoded: keep buf from the byte of the next magic
        keep = marks[block + 1][0] // 8
        marks = [(b - keep * 8, k) for b, k in marks[block + 1:]]
        buf, base, scanned, start = buf[keep:], base + keep, max(0, scanned - keep), base + keep


# blocks of one bzip2 file decoded at once, in threads (bzip2 lets go of the GIL while it
# decodes): a one-file task, the scoring job's fixed cost on a small archive, would otherwise
# leave the other core idle. Where every core has a task of its own they only get in each
# other's way (two processes reading the minute file side by side: 2.4-3.9 s with two threads
# each against 1.9-2.2 s with one), so the Spark parse sets 1 there (set_decode_threads)
_BZ2_THREADS = 2


def set_decode_threads(n: int) -> None:
    """The threads that decode one bzip2 file's blocks in this process from now on (default 2)."""
    global _BZ2_THREADS
    _BZ2_THREADS = max(1, int(n))


def _bz2_blocks(raw, start: int, threads: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(bit offset in the file, decompressed bytes) of each bzip2 block whose magic lies at or after
    byte ``start`` of the seekable stream ``raw``, in order; ``threads`` blocks decode at once,
    at most one more waits decoded (a task's memory: a few blocks of at most 900 kB input each)."""
    segments = _bz2_segments(raw, start)
    threads = _BZ2_THREADS if threads is None else threads
    if threads <= 1:
        for bit, data, first, last in segments:
            yield bit, _bz2_block(data, first, last)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="bz2") as pool:
        ahead: deque = deque()
        for bit, data, first, last in segments:
            ahead.append((bit, pool.submit(_bz2_block, data, first, last)))
            if len(ahead) > threads:
                bit, done = ahead.popleft()
                yield bit, done.result()
        while ahead:
            bit, done = ahead.popleft()
            yield bit, done.result()


# compressed bytes given to a decompressor at a time: what a damaged stream takes with it from
# before the break is the output of one call
_STREAM_READ = 64 << 10


def _streams(raw, decompressor: Callable, padding: bytes = b"") -> Iterator[bytes]:
    """The decompressed bytes of compressed streams one after another (bzip2 or xz files
    concatenated, as pbzip2 writes them; zstd frames), read in order; ``padding``: a byte that may lie between
    and after streams (xz's stream padding). Unlike ``bz2.BZ2File`` and ``lzma.LZMAFile``, which
    take a stream after the first that does not decode for trailing garbage and end there without
    a word (losing the rest of the file), any stream that does not decode raises OSError (or
    lzma.LZMAError, one of them), and one cut short EOFError."""
    dec, started = decompressor(), False
    while chunk := raw.read(_STREAM_READ):
        while chunk:
            if dec.eof:
                if padding:
                    chunk = chunk.lstrip(padding)
                    if not chunk:
                        break
                dec = decompressor()
            out = dec.decompress(chunk)
            started = True
            if out:
                yield out
            chunk = dec.unused_data if dec.eof else b""
    if started and not dec.eof:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _bz2_decoded(raw) -> Iterator[bytes]:
    """A bzip2 file (any number of streams, as pbzip2 and the Internet Archive's grabs write them)
    decompressed. A seekable one that ends in the end-of-stream magic is decoded by blocks in
    threads (:func:`_bz2_blocks`): on this machine the real v1.1 minute file in 0.8 s against 1.5
    s. Any other, or from a block that does not decode (a damaged file, or a block magic that is
    only data), stream by stream (:func:`_streams`), so that an error comes where the file
    breaks, after every line before it."""
    given = 0
    if _seekable(raw):
        try:
            raw.seek(-16, io.SEEK_END)
            whole = bool(_bit_find(raw.read(16), _BZ2_EOS))
        except OSError:  # shorter than 16 bytes
            whole = False
        if whole:
            try:
                for _, data in _bz2_blocks(raw, 0):
                    yield data
                    given += len(data)
                return
            except (OSError, EOFError):
                pass
        raw.seek(0)
    for data in _streams(raw, bz2.BZ2Decompressor):
        if given:  # what the blocks gave already
            skip = min(given, len(data))
            data, given = data[skip:], given - skip
        if data:
            yield data


class _Decoded(_Wrapped):
    """Chunks of bytes from an iterator (:func:`_streams`, :func:`_bz2_decoded`) as a readable
    stream over ``stream``, which it closes."""

    def __init__(self, chunks: Iterator[bytes], stream):
        super().__init__(stream)
        self._chunks = chunks
        self._buf, self._pos = b"", 0

    def readinto(self, buf) -> int:
        while self._pos >= len(self._buf):
            self._buf, self._pos = next(self._chunks, b""), 0
            if not self._buf:
                return 0
        n = min(len(buf), len(self._buf) - self._pos)
        buf[:n] = memoryview(self._buf)[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._chunks.close()
        super().close()


def _iter_bz2_range(raw, start: int, end: int, newlines_before: int) -> Iterator[tuple[int, bytes]]:
    """The lines of a bzip2 file that start in the blocks whose magic lies in bytes [start, end):
    after the line that runs into the first of them (the range before reads it), and through the
    line that runs over the last (read on into the blocks after), as :func:`_iter_range` does for
    plain bytes. Numbered on from ``newlines_before``."""
    line_no = newlines_before
    pending = b""
    skip = start > 0  # the line that runs into this range is the range before's
    for bit, data in _bz2_blocks(raw, start):
        if bit >= end * 8:  # past the range: only the line under way, through its newline
            if skip:
                return
            cut = data.find(b"\n")
            if cut < 0:
                pending += data
                continue
            line = pending + data[:cut]
            yield line_no + 1, line[:-1] if line.endswith(b"\r") else line
            return
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        if skip and lines:
            skip = False
            del lines[0]
        for line in lines:
            line_no += 1
            yield line_no, line[:-1] if line.endswith(b"\r") else line
    if pending and not skip:
        yield line_no + 1, pending[:-1] if pending.endswith(b"\r") else pending


# ``newlines_before`` from here up: the lines before the range are not known (a bzip2 block range
# after the first, whose count would take decompressing all before it). Its lines are numbered
# on from it, which keeps them in file order for ordering, and its rejects carry no line number.
UNNUMBERED = 1 << 32


def open_lines(path: str, byte_range: tuple[int, int] | None = None,
               newlines_before: int = 0, member: tuple[str, int, int] | None = None,
               pieces: bool = False) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw bytes without the line end) for every line of a file.

    Plain, gzip, bzip2, xz or zstd (by magic bytes); a local path, a ``file://`` URI or any URI that
    ``pyarrow.fs.FileSystem.from_uri`` understands. Errors propagate (OSError when the file
    cannot be opened; EOFError / OSError / zlib.error when a compressed file breaks off);
    :func:`read_file` turns them into rejects.

    ``byte_range=(start, end)`` of a plain file: only the lines that start at an offset in
    [start, end); the line that runs over ``end`` is read to its end, the one that runs into
    ``start`` is left to the range before. Ranges that tile a file give each line exactly once.
    Numbering starts after ``newlines_before``, the count of b"\\n" in bytes [0, start)
    (:func:`count_newlines`), so the numbers are the file's own. Of a bzip2 file: the lines that
    start in the blocks whose magic lies in [start, end), by the same rule (:func:`_iter_bz2_range`);
    ``newlines_before`` is then UNNUMBERED times the range's index (unknown for all but the first).

    ``member=(name, offset, size)``: the lines of that member of a tar or zip archive
    (:func:`archive_members`).

    ``pieces`` (a whole file): a line longer than 4 MB comes in pieces with its number, all but the
    last of them :class:`_Piece`; see :func:`_iter_split`.
    """
    if byte_range is None:
        stream = _open_decompressed(path, member)
        with stream:
            yield from _iter_split(stream, pieces)
        return
    start, end = byte_range
    with _open_raw(path, seekable=True) as raw:
        magic = raw.read(_MAGIC_BYTES)
        if magic.startswith(_BZIP2):
            yield from _iter_bz2_range(raw, start, end, newlines_before)
            return
        if _compressed_magic(magic):
            raise ValueError(f"{path} is compressed: a byte range of it is not a range of its lines")
        yield from _iter_range(raw, start, end, newlines_before)


def count_newlines(path: str, start: int, end: int) -> int:
    """The count of b"\\n" in bytes [start, end) of a file (what :func:`open_lines` numbers from)."""
    n = 0
    with _open_raw(path, seekable=True) as raw:
        raw.seek(start)
        left = end - start
        while left > 0:
            chunk = raw.read(min(_CHUNK * 8, left))
            if not chunk:
                break
            n += chunk.count(b"\n")
            left -= len(chunk)
    return n


# --------------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------------

# ValueError: pyarrow.lib.ArrowInvalid (a bad URI) and I/O on a broken stream;
# lzma.LZMAError: a damaged xz file
STREAM_ERRORS = (EOFError, OSError, zlib.error, ValueError, lzma.LZMAError)


PARQUET_MAGIC = b"PAR1"  # a Parquet file's first (and last) bytes
# what a file whose bytes are not text (after decompression) is, by its first bytes; each is one
# reject that says what it is and what to do, not a reject per line of binary
_ARCHIVE_MAGIC = ((b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"7z\xbc\xaf\x27\x1c", "7z"),
                  (b"Rar!\x1a\x07", "rar"), (b"\x04\x22\x4d\x18", "lz4"), (PARQUET_MAGIC, "parquet"),
                  (b"\xff\xfe", "utf16"), (b"\xfe\xff", "utf16"))
_ARCHIVE_ADVICE = {
    "tar": "a tar archive inside another archive: the jobs read the members of the tars they are given; "
           "extract this one (tar -xf {path} -C DIR) and pass DIR",
    "zip": "a zip archive read as one file (inside another archive, or one whose member list could not be "
           "read): the jobs read the members of the zips they are given; unzip this one (unzip {path} -d DIR) "
           "and pass DIR",
    "7z": "a 7-Zip archive: not a format the jobs read; extract it (7z x {path} -oDIR) and pass DIR",
    "rar": "a RAR archive: not a format the jobs read; extract it (unrar x {path} DIR/) and pass DIR",
    "lz4": "lz4-compressed: not a compression the jobs read (gzip, bzip2, xz, zstd are); "
           "recompress it (lz4 -dc {path} | zstd -o FILE.zst)",
    "parquet": "a Parquet file: the jobs read Parquet by its name (*.parquet, *.pq) or with --format parquet",
    "utf16": "UTF-16 text (as Excel's 'Unicode Text' saves it): the jobs read UTF-8; convert it "
             "(iconv -f UTF-16 -t UTF-8 {path} > FILE) and pass FILE",
    "binary": "binary data, not lines of text (an image, a video, a database?): not a file of tweets; leave it "
              "out of the input",
    "account_archive": "an account archive's window.YTD.{ytd} file, not its tweets (data/tweets.js): leave it "
                       "out of the input",
}


def _archive_kind(first_line: bytes) -> str | None:
    """What a file whose first line (or first piece of it) this is holds when it is not lines of
    text: an archive, Parquet, UTF-16 text or other binary data (a NUL byte, which no JSON, CSV or
    UTF-8 text has); None for text."""
    if _tar_magic(first_line):  # a tar archive's first header
        return "tar"
    kind = next((kind for magic, kind in _ARCHIVE_MAGIC if first_line.startswith(magic)), None)
    return kind or ("binary" if b"\x00" in first_line[:4096] else None)


def _stream_lines(stream) -> Iterator[tuple[int, bytes]]:
    """The lines of an open binary stream (a member of a tar read as a stream), decompressed as its
    first bytes say, in pieces as :func:`open_lines` gives them."""
    buffered = io.BufferedReader(stream, buffer_size=_CHUNK)
    with _decompressed(buffered, buffered.peek(_MAGIC_BYTES)[:_MAGIC_BYTES]) as data:
        yield from _iter_split(data, pieces=True)


def _decoded_lines(path: str, state: dict, byte_range=None, newlines_before: int = 0,
                   member=None, stream=None) -> Iterator[tuple[int, str]]:
    """Non-blank decoded lines; on a read error records it in ``state`` and stops. Of a whole file,
    a line longer than 4 MB comes in pieces with its number (:func:`_iter_split`): items with the
    same number are one line."""
    whole = True  # the item before ended its line: the next one starts a line
    try:
        raw_lines = (open_lines(path, byte_range, newlines_before, member, pieces=byte_range is None)
                     if stream is None else _stream_lines(stream))
        for line_no, raw in raw_lines:
            starts = whole
            whole = type(raw) is not _Piece
            state["in_line"] = not whole  # a read error now leaves this line unfinished
            if whole:
                state["last_line"] = line_no
            if line_no == 1 and starts and (kind := _archive_kind(raw)) is not None:  # not lines of text
                state["archive"] = kind
                return
            text, _had_invalid = s140.decode(raw)
            if line_no == 1 and starts:
                text = text.lstrip("\ufeff")
            if not (starts and whole) or text.strip():  # a blank line is no record; a piece is kept
                yield line_no, text
    except STREAM_ERRORS as exc:
        state["error"] = exc


# an account's own archive (Twitter's "Download an archive of your data": data/tweets.js) assigns
# its JSON to a JavaScript variable: ``window.YTD.tweets.part0 = [ {"tweet" : {...}}, ... ]``
_YTD = re.compile(r"\s*window\.YTD\.([\w-]+)[\w.-]*\s*=\s*")
# the archive's files of tweets (tweets.js, older tweet.js, deleted-tweets.js, community-tweet.js);
# the others (like.js, direct-messages.js, account.js, ...) hold no tweets of the account
_YTD_TWEETS = {"tweets", "tweet", "deleted_tweets", "community_tweet"}


def _opens_json_document(line: str) -> bool:
    """A first line that opens a JSON document instead of being one JSON value of JSON Lines: an
    array (``[`` ..., a scraper's dump of tweets), an object pretty-printed over several lines
    (``{`` alone, as ``json.dump(indent=...)``, ``jq`` and ``JSON.stringify`` write it), or an
    account archive's ``window.YTD.tweets.part0 = [``."""
    text = line.strip().lstrip("\ufeff")
    return text.startswith("[") or text == "{" or _YTD.match(text) is not None


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_DOC_STEP = 1 << 16  # characters of lines added to the buffer at a time
_DOC_MAX_VALUE = 64 << 20  # characters one value may take before it counts as malformed


def _document_values(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """A file that is a JSON document, as (line it starts on, its text) of each value in it: the
    elements of a top-level array, or each top-level value (pretty-printed objects one after
    another). The line parsers take these texts as they take lines. A value that does not parse is
    given whole as its layout bounds it (``end_of_broken``), which its parser rejects as malformed
    JSON, and reading goes on after it; nothing is left out silently."""
    it = iter(lines)
    buf, pos = "", 0
    starts: list[int] = []  # offset in buf of each line in it
    numbers: list[int] = []  # and its line number
    more, in_array = True, False
    last_no = None  # the number of the line read last: an item with it again is the rest of it

    def fill(trim: bool = True) -> None:
        nonlocal buf, pos, more, last_no
        if trim and pos > (len(buf) >> 1):  # drop what is consumed, to mid-line: a file may be one line
            cut = bisect.bisect_right(starts, pos) - 1
            del starts[:cut], numbers[:cut]
            starts[:] = [o - pos for o in starts]  # the first may start before the buffer now
            buf, pos = buf[pos:], 0
        added = []
        size = 0
        for line_no, text in it:
            if line_no != last_no:  # a new line, after the line end of the one before
                if buf or added:
                    added.append("\n")
                    size += 1
                starts.append(len(buf) + size)
                numbers.append(line_no)
                last_no = line_no
            added.append(text)
            size += len(text)
            if size >= _DOC_STEP:
                break
        else:
            more = False
        buf += "".join(added)

    def line_at(offset: int) -> int:
        return numbers[bisect.bisect_right(starts, offset) - 1]

    def end_of_broken(start: int) -> int:
        """Where a value that does not parse ends, by the layout: before the next line indented no
        deeper than the value's first character (its next sibling, or what closes its parent), with
        a line that closes the value itself at its own indent ("}," under "{") counted in."""
        first = bisect.bisect_right(starts, start) - 1
        column = start - starts[first]
        j = first + 1
        while True:
            while j >= len(starts):
                if not more or len(buf) - start > _DOC_MAX_VALUE:
                    return len(buf)
                fill(trim=False)
            line_end = starts[j + 1] - 1 if j + 1 < len(starts) else len(buf)
            line = buf[starts[j]:line_end]
            body = line.lstrip(" \t")
            indent = len(line) - len(body)
            if indent < column or (indent == column and body[:1] not in "}]"):
                return starts[j]
            if indent == column:  # its own closing bracket
                return line_end
            j += 1

    while True:
        pos = _SPACE.match(buf, pos).end()
        if pos >= len(buf):
            if not more:
                return
            fill()
            continue
        c = buf[pos]
        if c == "[" and not in_array:
            in_array, pos = True, pos + 1
            continue
        if in_array and c in ",]":
            in_array, pos = c == ",", pos + 1
            continue
        try:
            _, end = _DECODER.raw_decode(buf, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            cut_off = isinstance(exc, json.JSONDecodeError) and (
                exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated string"))
            if cut_off and more and len(buf) - pos < _DOC_MAX_VALUE:
                fill()  # the value goes on in lines not read yet
                continue
            end = end_of_broken(pos)
            yield line_at(pos), buf[pos:end]
            pos = end
            continue
        if end >= len(buf) - 1 and more and buf[end - 1] not in "}]\"":  # a number may go on
            fill()
            continue
        yield line_at(pos), buf[pos:end]
        pos = end


def _detect(lines: Iterator[tuple[int, str]], columns: tuple = ()) -> tuple[str | None, list[tuple[int, str]]]:
    """The format told by the first of at most _DETECT_MAX_LINES lines, and the lines read."""
    buffered: list[tuple[int, str]] = []
    for item in lines:
        buffered.append(item)
        found = _classify(item[1], columns)
        if found is not None:
            return found, buffered
        if len(buffered) >= _DETECT_MAX_LINES:
            break
    return None, buffered


def _whole_lines(items: Iterator[tuple[int, str]], state: dict) -> Iterator[tuple[int, str]]:
    """Lines given in pieces (items with the same number) joined again; the pieces of a line that a
    read error cut off (``state``, :func:`_decoded_lines`) are left to its truncated_file reject,
    as a line cut off whole is."""
    number, parts = None, []
    for line_no, text in items:
        if line_no != number and parts:
            yield number, parts[0] if len(parts) == 1 else "".join(parts)
            parts = []
        number = line_no
        parts.append(text)
    if parts and not state.get("in_line"):
        yield number, parts[0] if len(parts) == 1 else "".join(parts)


def _lines_or_values(lines: Iterator[tuple[int, str]], state: dict) -> Iterator[tuple[int, str]]:
    """A file's lines, or the values of the JSON document it is (:func:`_document_values`), which
    streams even when the document is one line (it is read in pieces)."""
    first = next(lines, None)
    if first is None:
        return iter(())
    if not _opens_json_document(first[1]):
        return _whole_lines(itertools.chain([first], lines), state)
    ytd = _YTD.match(first[1])  # (_decoded_lines took off a byte order mark)
    if ytd is not None and ytd.group(1) not in _YTD_TWEETS:  # one reject for the file (read_numbered)
        state["archive"], state["ytd"] = "account_archive", ytd.group(1)
        return iter(())
    if ytd is not None:  # the JSON after the assignment
        first = (first[0], first[1][ytd.end():])
    return _document_values(itertools.chain([first], lines))


def sniff(path: str, member: tuple[str, int, int] | None = None) -> tuple[str | None, bool, str | None]:
    """From one read of a file's beginning: its first non-blank line (decoded), whether that line
    opens a JSON document (an array, pretty-printed objects: not lines of records, so never cut into
    byte ranges), and the format :func:`read_file` with ``fmt="auto"`` gives it. (None, False, None)
    for a file that is empty, cannot be read, or is an archive read as one file. ``member``: of
    that member of a tar or zip archive (:func:`archive_members`)."""
    state = {"last_line": 0, "error": None}
    lines = _decoded_lines(path, state, member=member)
    try:
        first = next(lines, None)
        if first is None:
            return None, False, None
        return first[1], _opens_json_document(first[1]), _detect(_lines_or_values(itertools.chain([first], lines), state))[0]
    finally:
        lines.close()


def detect_file_format(path: str) -> str | None:
    """The format :func:`read_file` with ``fmt="auto"`` gives ``path``; None when its first
    lines do not tell (or it cannot be read)."""
    return sniff(path)[2]


def read_file(path: str, fmt: str = "auto", source_file: str | None = None,
              byte_range: tuple[int, int] | None = None, newlines_before: int = 0) -> Iterator[Record]:
    """Every record of one file, in file order; bad content becomes rejects, never exceptions.

    ``fmt`` is one of ``FORMATS`` or ``"auto"``: the format is recognised from the first
    non-blank line (or, when that line is itself broken, the first of the next lines that tells;
    when none of the first 100 non-blank lines tells, each line is rejected as
    ``unknown_record``). A file that cannot be opened gives one ``unreadable_file`` reject; a
    compressed file that breaks off gives the records before the break and then one
    ``truncated_file`` reject.

    ``byte_range``/``newlines_before``: the records of the lines that start in a byte range of a
    plain file (:func:`open_lines`), numbered as in the whole file; ``fmt`` must then be given.
    """
    for _, rec in read_numbered(path, fmt, source_file, byte_range, newlines_before):
        yield rec


def read_numbered(path: str, fmt: str = "auto", source_file: str | None = None,
                  byte_range: tuple[int, int] | None = None, newlines_before: int = 0,
                  member: tuple[str, int, int] | None = None, stream=None,
                  columns: tuple = ()) -> Iterator[tuple[int, Record]]:
    """:func:`read_file`'s records with the 1-based line each came from. ``member``: read the tar or
    zip member ``(name, offset, size)`` of ``path`` (:func:`archive_members`) as a file of its own,
    named ``<path>!/<name>`` in ``source_file``. A whole file that is a tar archive, compressed or
    not (``.tar.gz``, ``.tar.bz2``, ``.tar.xz``, ``.tar.zst``), gives the records of its members in
    the order they lie, read as one stream (:func:`_read_tar_stream`). ``stream``: read this open
    binary stream instead of opening ``path`` (such a member, named ``source_file``). ``columns``:
    (field, key) pairs naming the fields of other tools' tweet objects (format ``json``) where they
    are not found by name, as the jobs' --id-col, --text-col ... name a table's columns."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected 'auto' or one of {FORMATS}")
    if byte_range is not None and fmt == "auto":
        raise ValueError("a byte range of a file needs its format: detect it on the whole file first")
    fmt_given = fmt
    if member is not None and byte_range is not None:
        raise ValueError("a byte range of an archive member is not supported")
    source = source_file if source_file is not None else path
    if member is not None:
        source = member_path(source, member[0])
    state: dict = {"last_line": newlines_before, "error": None}
    lines = _decoded_lines(path, state, byte_range, newlines_before, member, stream)
    if byte_range is None:
        lines = _lines_or_values(lines, state)

    buffered: list[tuple[int, str]] = []
    if fmt == "auto":
        fmt, buffered = _detect(lines, columns)
    # nothing told the format: every line is counted (unknown_record) rather than guessed at
    parse = _PARSERS[fmt] if fmt is not None else None
    if fmt == "json" and columns:
        parse = functools.partial(parse_json_line, columns=columns)

    def all_lines() -> Iterable[tuple[int, str]]:
        yield from buffered
        yield from lines

    numbered = newlines_before < UNNUMBERED
    # a Sentiment140 text written on several lines is one record (numbered by its first line)
    for line_no, text in (s140.records(all_lines()) if fmt == "sentiment140" else all_lines()):
        if parse is None:
            yield line_no, _reject(text, source, line_no if numbered else None, schema.UNKNOWN_RECORD)
        else:
            for rec in parse(text, source, line_no):
                if not numbered and rec[0] == "reject":
                    rec[1]["line_no"] = None
                yield line_no, rec

    if state.get("archive") == "tar" and member is None and stream is None and byte_range is None:
        yield from _read_tar_stream(path, fmt_given, source, columns)
        return
    if state.get("archive"):  # one clear reject, not one per line of binary
        yield 0, _reject(_ARCHIVE_ADVICE[state["archive"]].format(path=path, ytd=state.get("ytd")), source, None,
                         schema.UNREADABLE_FILE)
    error = state["error"]
    if error is not None:
        message = f"{type(error).__name__}: {error}"
        line_no = state["last_line"] + 1
        if isinstance(error, EOFError) or state["last_line"] > newlines_before:
            where = f"after line {state['last_line']}" if numbered else f"in its blocks from byte {byte_range[0]}"
            yield line_no, _reject(f"file breaks off {where}: {message}", source, line_no if numbered else None,
                                   schema.TRUNCATED_FILE)
        else:
            yield line_no, _reject(f"cannot read file: {message}", source, None, schema.UNREADABLE_FILE)


def _read_tar_stream(path: str, fmt: str, source: str, columns: tuple = ()) -> Iterator[tuple[int, Record]]:
    """The records of each regular, visible member of a tar archive (compressed or not), read as
    one stream in the order they lie, each named ``<source>!/<member>`` and read as a file of its
    own (itself plain or compressed). An archive that breaks off gives the records before the break
    and one truncated_file reject."""
    import tarfile

    members = 0
    try:
        with _open_decompressed(path) as data, tarfile.open(fileobj=data, mode="r|") as tar:
            for info in tar:
                if not info.isfile() or not _visible(info.name):
                    continue
                members += 1
                yield from read_numbered(path, fmt, member_path(source, info.name), stream=tar.extractfile(info),
                                         columns=columns)
    except (tarfile.TarError, *STREAM_ERRORS) as exc:
        yield 0, _reject(f"tar archive breaks off after {members} member(s): {type(exc).__name__}: {exc}",
                         source, None, schema.TRUNCATED_FILE)


# --------------------------------------------------------------------------------------------
# listing inputs
# --------------------------------------------------------------------------------------------

def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


# Files that sit beside tweet archives and never hold tweets: an Internet Archive item as
# downloaded (its _files.xml, _meta.xml, _meta.sqlite and .torrent beside the day tars), checksum
# lists, documents and images. A directory walk skips them (each line would be a reject); the
# listing keeps their paths (Listed.skipped) for the run summary. A file named on its own is read.
_NOT_DATA_SUFFIXES = (".xml", ".sqlite", ".sqlite3", ".db", ".torrent", ".md5", ".sha1", ".sha256", ".sha512",
                      ".md", ".rst", ".html", ".htm", ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".svg")
_NOT_DATA_NAME = re.compile(r"(?:readme|license|licence|notice|changelog|(?:md5|sha1|sha256|sha512)sums?)"
                            r"(?:\.[a-z0-9]+)?", re.IGNORECASE)


def not_data(name: str) -> bool:
    """True for a file name (not a path) that a directory of tweet files holds beside the data."""
    return name.lower().endswith(_NOT_DATA_SUFFIXES) or _NOT_DATA_NAME.fullmatch(name) is not None


def _list_local(path: str, skipped: list[str], skip_dir=None) -> list[str]:
    # absolute: the list is sent to executors, whose working directory is not the driver's
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"input path does not exist: {path}")
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not _hidden(d)
                         and not (skip_dir and skip_dir(os.path.relpath(os.path.join(root, d), path))))
        for f in files:
            if not _hidden(f):
                (skipped if not_data(f) else found).append(os.path.join(root, f))
    return sorted(found)


def _filesystem(uri: str):
    """(pyarrow file system, path in it) of a URI."""
    from pyarrow import fs as pafs  # lazy: only for non-local URIs

    return pafs.FileSystem.from_uri(uri)


def _list_remote(uri: str, listed: "Listed", skip_dir=None) -> list[str]:
    """The files under ``uri`` (a URI of pyarrow.fs). What the listing gives goes into ``listed``:
    sizes, modification times (ms since the epoch, 0 where the store gives none), and the files
    :func:`not_data` leaves out. With ``skip_dir`` the tree is walked a folder at a time and the
    folders it names are not listed (an object store's archive of years is not listed whole for
    one night); without, in one recursive listing."""
    from pyarrow import fs as pafs

    def keep(path: str, info) -> str:
        listed.sizes[path] = info.size
        listed.mtimes[path] = (info.mtime_ns or 0) // 1_000_000
        return path

    filesystem, base = _filesystem(uri)
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"input path does not exist: {uri}")
    if info.type != pafs.FileType.Directory:
        return [keep(uri, info)]
    # rebuild URIs: for hdfs://host:port/p the fs path excludes the authority; for
    # s3://bucket/key (and similar object stores) it starts with the bucket
    parsed = urlparse(uri)
    if parsed.netloc and not base.lstrip("/").startswith(parsed.netloc):
        prefix = f"{parsed.scheme}://{parsed.netloc}"
    else:
        prefix = f"{parsed.scheme}://"
    base_clean = base.rstrip("/")
    found = []
    pending = [base]
    while pending:
        folder = pending.pop()
        for entry in filesystem.get_file_info(pafs.FileSelector(folder, recursive=skip_dir is None)):
            rel = entry.path[len(base_clean):].lstrip("/")
            if any(_hidden(part) for part in rel.split("/")):
                continue
            if entry.type == pafs.FileType.Directory:
                if skip_dir is not None and not skip_dir(rel):
                    pending.append(entry.path)
            elif entry.type == pafs.FileType.File:
                if not_data(rel.rsplit("/", 1)[-1]):
                    listed.skipped.append(prefix + entry.path)
                else:
                    found.append(keep(prefix + entry.path, entry))
    return sorted(found)


class Listed(list):
    """Input files as :func:`list_input_files` found them, and the sizes its listing gave
    (``sizes``: those behind a URI, where an object store's listing has them; a size asked again
    would be one request per file), their modification times (``mtimes``, likewise), and
    ``skipped``: the files of the directories walked that :func:`not_data` left out."""

    def __init__(self, files=(), sizes: dict[str, int] | None = None):
        super().__init__(files)
        self.sizes = sizes if sizes is not None else {}
        self.mtimes: dict[str, int] = {}  # behind a URI, as its listing gave them (ms)
        self.skipped: list[str] = []


def list_input_files(paths: list[str], skip_dir=None) -> Listed:
    """Input paths with directories expanded recursively (sorted, hidden '.'/'_' entries skipped,
    and files that are not tweet data by their names: :func:`not_data`, kept in ``skipped``).

    Files named explicitly are kept even if their names start with '.' or '_' or look like no data. Local paths and
    ``file://`` URIs come back as absolute local paths; other URIs stay URIs. Duplicates are dropped (first one kept).
    Raises FileNotFoundError("input path does not exist: ...") for a missing path. A :class:`Listed`
    (this function's own result) is returned as it is: behind an object store, listing its files
    again would mean a request for each. ``skip_dir``: a directory (its path relative to the
    directory or URI given) for which it returns True is not walked (the nightly job's other days).
    """
    if isinstance(paths, Listed):
        return paths
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = Listed()
    seen: set[str] = set()
    for path in paths:
        path = os.fspath(path)
        local = _local_path(path)
        found = (_list_local(local, out.skipped, skip_dir) if local is not None else
                 _list_remote(path, out, skip_dir))
        for item in found:
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out
