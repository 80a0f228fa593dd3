"""A realistic synthetic tweet archive, resampled from one real minute of the Twitter stream.

    python -m bench.make_archive --out DIR --days 30 --tweets-per-day N [--start 2021-01-01]
                                 [--seed 0] [--files-per-day 24] [--source FILE.json.bz2]

Writes the Internet Archive layout ``DIR/YYYY/MM/DD/HH/MM.json.bz2`` (v1.1 JSON Lines, bzip2):
``--files-per-day`` files per day, each covering an equal slice of the day (24: one per hour,
``HH/00.json.bz2``). Every tweet line is a real line of the source file (drawn with replacement,
so the mix of languages, retweets, quotes and extended/truncated tweets is the real one) with:

- a new ``created_at`` (v1.1 format, whole seconds) and ``timestamp_ms``, spread uniformly over
  the file's slice of the day;
- a new Snowflake ``id``/``id_str`` consistent with that time:
  ``((timestamp_ms - 1288834974657) << 22) | low``, where the 22 low bits (worker + sequence)
  come from a counter over every generated id, so ids are unique;
- for a retweet (and a quote), the nested ``retweeted_status`` / ``quoted_status`` gets its own
  new id and ``created_at``, a little earlier (1 s to 6 h) than the tweet that embeds it;
  ``quoted_status_id(_str)`` follows it. ``extended_tweet`` and everything else are kept as is.

Delete notices come at the source's rate (notices per tweet), in the stream's own form
``{"delete":{"status":{"id","id_str","user_id","user_id_str"},"timestamp_ms"}}``, and always
refer to a tweet generated earlier by this run, by the same user id: most to a tweet of the
same day (deleted after it was posted), about 5% (``--old-delete-share``; at least one a day, from
the second day on) to a tweet 1-3 days earlier (``--old-delete-days``). Lines in a file are in time order. The same arguments give the same files.
"""
from __future__ import annotations

import argparse
import bz2
import datetime as dt
import json
import logging
import os
import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("bench.make_archive")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "archives" / "twitter-v1.1" / "2021-01-01-0729.json.bz2"
FALLBACK_SOURCE = ROOT / "data" / "sample" / "archive" / "2021" / "01" / "01" / "07" / "29.json.bz2"

TWITTER_EPOCH_MS = 1288834974657
OLD_DELETE_SHARE = 0.05      # deletes that refer to a tweet 1-OLD_DELETE_DAYS days earlier (from day 2 on)
OLD_DELETE_DAYS = 3
NESTED_MAX_AGE_MS = 6 * 3600 * 1000
DAY_MS = 86_400_000
COMPRESSLEVEL = 1            # bz2 level 1 vs 9: see `generate`'s docstring
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def default_source() -> Path:
    return DEFAULT_SOURCE if DEFAULT_SOURCE.exists() else FALLBACK_SOURCE


def v1_date(ms: int) -> str:
    """Epoch milliseconds -> ``Fri Jan 01 07:29:00 +0000 2021`` (locale-independent)."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return f"{_DAYS[t.weekday()]} {_MONTHS[t.month - 1]} {t.day:02d} {t:%H:%M:%S} +0000 {t.year}"


def snowflake(ms: int, low: int) -> int:
    """A Snowflake id for epoch milliseconds ``ms``; ``low``: the 22 worker + sequence bits."""
    return ((ms - TWITTER_EPOCH_MS) << 22) | (low & 0x3FFFFF)


def snowflake_ms(tweet_id: int | str) -> int:
    """The epoch milliseconds a Snowflake id was made at."""
    return (int(tweet_id) >> 22) + TWITTER_EPOCH_MS


def load_templates(source: str | Path) -> tuple[list[dict], int]:
    """(tweet objects, number of delete notices) of a v1.1 JSON Lines file (plain or bz2);
    other lines (stream control messages, broken JSON) are skipped."""
    opener = bz2.open if str(source).endswith(".bz2") else open
    tweets, deletes = [], 0
    with opener(source, "rt", encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if "delete" in obj:
                deletes += 1
            elif "created_at" in obj and ("id_str" in obj or "id" in obj):
                tweets.append(obj)
    if not tweets:
        raise ValueError(f"no v1.1 tweets in {source}")
    return tweets, deletes


class _Ids:
    """Unique Snowflake ids: the low 22 bits are a counter over every id made."""

    def __init__(self):
        self.n = 0

    def __call__(self, ms: int) -> int:
        self.n += 1
        return snowflake(ms, self.n)


_FIELD = re.compile(r'"@@(\d+):(\w+)@@"')


class Template:
    """One real tweet, serialized once with placeholders where a copy differs: each status in it
    (the tweet, its retweeted and quoted statuses; one status quoted in two places is one
    status) gets a new ``id``, ``id_str`` and ``created_at`` (and the tweet its
    ``timestamp_ms``; ``quoted_status_id(_str)`` follow the quoted status). Rendering a copy is
    then a string join, not a JSON dump: rendering is cheap and bzip2 is the cost."""

    def __init__(self, tweet: dict):
        self.parents: list[int] = []       # status k is posted a little before status parents[k]
        index: dict[str, int] = {}

        def walk(status: dict, parent: int) -> dict:
            key = str(status.get("id_str") or status.get("id"))
            k = index.setdefault(key, len(self.parents))
            if k == len(self.parents):
                self.parents.append(parent)
            out = dict(status, id=f"@@{k}:id@@", id_str=f"@@{k}:id_str@@", created_at=f"@@{k}:created_at@@")
            if parent < 0:
                out["timestamp_ms"] = f"@@{k}:timestamp_ms@@"
            for name in ("retweeted_status", "quoted_status"):
                if isinstance(status.get(name), dict):
                    out[name] = walk(status[name], k)
            if isinstance(status.get("quoted_status"), dict):
                q = out["quoted_status"]["id"].split(":")[0][2:]
                out["quoted_status_id"] = f"@@{q}:id@@"
                out["quoted_status_id_str"] = f"@@{q}:id_str@@"
            return out

        pieces = _FIELD.split(_dumps(walk(tweet, -1)))
        self.literals = pieces[0::3]
        self.fields = [(int(k), f) for k, f in zip(pieces[1::3], pieces[2::3])]
        user = tweet.get("user")
        uid = user.get("id") if isinstance(user, dict) else None
        self.user_id = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        self.is_retweet = isinstance(tweet.get("retweeted_status"), dict)

    def plan(self, ms: int, ids: _Ids, rng: random.Random) -> tuple[list[int], list[int]]:
        """(times, ids) of the statuses of a copy posted at ``ms``; the tweet's are first."""
        times = [ms]
        for parent in self.parents[1:]:
            times.append(times[parent] - rng.randint(1000, NESTED_MAX_AGE_MS))
        return times, [ids(t) for t in times]

    def render(self, times: list[int], new_ids: list[int]) -> str:
        """The JSON line (no newline) of a planned copy."""
        values = {"id": lambda k: str(new_ids[k]), "id_str": lambda k: f'"{new_ids[k]}"',
                  "created_at": lambda k: f'"{v1_date(times[k])}"', "timestamp_ms": lambda k: f'"{times[k]}"'}
        parts = [self.literals[0]]
        for (k, field), literal in zip(self.fields, self.literals[1:]):
            parts.append(values[field](k))
            parts.append(literal)
        return "".join(parts)


def delete_notice(tweet_id: int, user_id: int | None, ms: int) -> str:
    uid = {"user_id": user_id, "user_id_str": str(user_id)} if user_id is not None else {}
    return _dumps({"delete": {"status": {"id": tweet_id, "id_str": str(tweet_id), **uid}, "timestamp_ms": str(ms)}})


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))  # ensure_ascii, as the stream writes it


def _line(event: tuple) -> str:
    ms, _, tpl, what = event
    return tpl.render(*what) if tpl is not None else delete_notice(*what, ms)


def _write(path: Path, lines: list[str], compresslevel: int) -> None:
    body = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
    data = bz2.compress(body, compresslevel)  # releases the GIL: files compress in parallel threads
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def generate(out: str | Path, days: int, tweets_per_day: int, start: str | dt.date = "2021-01-01",
             seed: int = 0, files_per_day: int = 24, source: str | Path | None = None,
             compresslevel: int = COMPRESSLEVEL, workers: int | None = None,
             old_delete_share: float = OLD_DELETE_SHARE, old_delete_days: int = OLD_DELETE_DAYS) -> dict:
    """Write the archive under ``out``; returns the counts::

        {"tweets", "deletes", "deletes_of_earlier_days", "retweets", "files", "lines", "source",
         "per_day": {"YYYY-MM-DD": {"tweets", "deletes", "deletes_of_earlier_days", "retweets", "files"}}}

    ``deletes_of_earlier_days``: notices whose tweet was generated on an earlier day. All random
    choices are made here, in one thread, from ``seed``; bzip2 (most of the time: ~5.5 kB of JSON
    per tweet) runs in ``workers`` threads (default: the CPU count), so the files do not depend
    on ``workers``. Level 1 compresses ~1.5x faster than 9 for files ~35% larger.
    """
    if days < 1 or tweets_per_day < 0:
        raise ValueError(f"--days must be >= 1 and --tweets-per-day >= 0 (got {days}, {tweets_per_day})")
    if not 0 <= old_delete_share <= 1 or old_delete_days < 1:
        raise ValueError("--old-delete-share must be in [0, 1] and --old-delete-days >= 1")
    if not 1 <= files_per_day <= 1440:
        raise ValueError(f"--files-per-day must be between 1 and 1440 (one a minute), got {files_per_day}")
    start_date = dt.date.fromisoformat(start) if isinstance(start, str) else start
    source = Path(source) if source is not None else default_source()
    tweets, src_deletes = load_templates(source)
    delete_rate = src_deletes / len(tweets)
    compiled: dict[int, Template] = {}
    rng = random.Random(seed)
    ids = _Ids()
    out = Path(out)
    totals = {"tweets": 0, "deletes": 0, "deletes_of_earlier_days": 0, "retweets": 0, "files": 0, "lines": 0,
              "source": str(source), "per_day": {}}
    history: list[list[tuple[int, int | None, int]]] = []  # the last old_delete_days days: (id, user id, ms) per tweet
    # file k of a day covers [edges[k], edges[k+1]) ms after midnight, starting on a whole minute
    edges = [k * 1440 // files_per_day * 60_000 for k in range(files_per_day)] + [DAY_MS]
    workers = workers or min(8, os.cpu_count() or 1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for d in range(days):
            day = start_date + dt.timedelta(days=d)
            day_ms = (day - _EPOCH.date()).days * DAY_MS
            events: list[tuple] = []  # (ms, order, Template or None for a delete, what to render)
            today: list[tuple[int, int | None, int]] = []
            retweets = 0
            for off in sorted(rng.randrange(DAY_MS) for _ in range(tweets_per_day)):
                ms = day_ms + off
                i = rng.randrange(len(tweets))
                tpl = compiled.get(i) or compiled.setdefault(i, Template(tweets[i]))
                times, new_ids = tpl.plan(ms, ids, rng)
                retweets += tpl.is_retweet
                today.append((new_ids[0], tpl.user_id, ms))
                events.append((ms, len(events), tpl, (times, new_ids)))
            earlier = [h for h in history if h]
            n_deletes = int(round(tweets_per_day * delete_rate)) if today else 0
            # ~old_delete_share of the notices (at least one a day, from the second day on) delete older tweets
            old = max(1, round(n_deletes * old_delete_share)) if earlier and n_deletes else 0
            old_slots = set(rng.sample(range(n_deletes), old))
            for slot in range(n_deletes):
                if slot in old_slots:
                    tid, uid, _ = rng.choice(rng.choice(earlier))
                    ms = day_ms + rng.randrange(DAY_MS)
                else:  # a tweet of today, deleted after it was posted
                    tid, uid, posted = rng.choice(today)
                    ms = rng.randint(min(posted + 1, day_ms + DAY_MS - 1), day_ms + DAY_MS - 1)
                events.append((ms, len(events), None, (tid, uid)))
            events.sort(key=lambda e: e[:2])

            i = 0
            for k in range(files_per_day):
                j = i
                while j < len(events) and events[j][0] < day_ms + edges[k + 1]:
                    j += 1
                minute = edges[k] // 60_000
                path = out / f"{day:%Y/%m/%d}" / f"{minute // 60:02d}" / f"{minute % 60:02d}.json.bz2"
                pending.append(pool.submit(_write, path, [_line(e) for e in events[i:j]], compresslevel))
                i = j
            while len(pending) > 2 * workers:  # bound the bodies held in memory
                pending.pop(0).result()
            history = (history + [today])[-old_delete_days:]
            per = {"tweets": len(today), "deletes": len(events) - len(today), "deletes_of_earlier_days": old,
                   "retweets": retweets, "files": files_per_day}
            totals["per_day"][day.isoformat()] = per
            for key in per:
                totals[key] += per[key]
            totals["lines"] += len(events)
            log.info("%s: %d tweets, %d deletes (%d of earlier days), %d files", day, per["tweets"], per["deletes"],
                     old, files_per_day)
        for f in pending:
            f.result()
    return totals


def add_delete_age_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--old-delete-share", type=float, default=OLD_DELETE_SHARE,
                   help="share of the delete notices that name a tweet of an earlier day (the real stream: about "
                        "0.7, spread over years: the minute file's 307 notices name tweets of 123 different days)")
    p.add_argument("--old-delete-days", type=int, default=OLD_DELETE_DAYS,
                   help="how many days back those tweets are, at most (uniform over the days generated so far)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.make_archive", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (files land in DIR/YYYY/MM/DD/HH/MM.json.bz2)")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--tweets-per-day", type=int, required=True)
    p.add_argument("--start", default="2021-01-01", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--files-per-day", type=int, default=24, help="files per day, 1..1440 (24: one per hour)")
    p.add_argument("--source", help=f"real v1.1 JSON Lines file to resample (default {DEFAULT_SOURCE}, "
                                    f"else {FALLBACK_SOURCE.relative_to(ROOT)})")
    p.add_argument("--compresslevel", type=int, default=COMPRESSLEVEL, choices=range(1, 10), metavar="1..9")
    p.add_argument("--workers", type=int, default=None, help="compression threads (default: CPU count, at most 8)")
    add_delete_age_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    try:
        dt.date.fromisoformat(args.start)
        counts = generate(args.out, args.days, args.tweets_per_day, args.start, args.seed, args.files_per_day,
                          args.source, args.compresslevel, args.workers, args.old_delete_share, args.old_delete_days)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    counts.update(wall_seconds=round(wall, 3), tweets_per_second=round(counts["tweets"] / wall, 1) if wall else None)
    print(json.dumps({k: v for k, v in counts.items() if k != "per_day"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
