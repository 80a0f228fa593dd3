"""Journaled, roll-forward commits of staged Parquet partitions into an output table (local or
mounted filesystems).

A run writes everything it will publish under ``_staging/<run_id>/``, then writes one journal
file ``_journal/<run_id>.json`` listing the directory and file moves and the metadata updates.
Writing the journal (an atomic rename) is the commit point: before it, a killed run leaves only
staging debris that the next run deletes; after it, any run (the same or the next) replays the
journal to the end. Each move is idempotent, so a replay after a kill mid-commit is safe.

A partition directory is replaced with ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it,
so readers see the old or the new partition and never neither; elsewhere it falls back to two
renames (a sub-millisecond window in which the partition is absent).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

JOURNAL = "_journal"
STAGING = "_staging"
TRASH = "_trash"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = None


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux renameat2). False where unsupported."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fault_point(name: str) -> None:
    """Test-only fault injection: TWEET_SENTIMENT_FAULT=<name> kills this process here (SIGKILL)."""
    if os.environ.get("TWEET_SENTIMENT_FAULT") == name:
        log.warning("fault injection: killing the process at %s", name)
        os.kill(os.getpid(), 9)


def replace_dir(src: Path, dst: Path, trash: Path) -> None:
    """Move staged directory ``src`` to ``dst``, replacing dst (idempotent: no-op once done)."""
    if not src.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    trash.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if _exchange(str(src), str(dst)):  # dst is now the new data, src the old
            shutil.rmtree(trash, ignore_errors=True)
            os.rename(src, trash)
            return
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(dst, trash)
    os.rename(src, dst)


def move_file(src: Path, dst: Path) -> None:
    if src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def apply(root: Path, journal: dict, on_metadata) -> None:
    """Replay one journal: moves, then ``on_metadata(journal)`` (manifest, run log), then cleanup."""
    run_id = journal["run_id"]
    for i, (kind, src, dst) in enumerate(journal["moves"]):
        if kind == "dir":
            replace_dir(root / src, root / dst, root / TRASH / run_id / str(i))
        else:
            move_file(root / src, root / dst)
        if i == 0:
            fault_point("mid_commit")
    on_metadata(journal)
    shutil.rmtree(root / STAGING / run_id, ignore_errors=True)
    shutil.rmtree(root / TRASH / run_id, ignore_errors=True)
    (root / JOURNAL / f"{run_id}.json").unlink(missing_ok=True)


def commit(root: Path, journal: dict, on_metadata) -> None:
    write_json_atomic(root / JOURNAL / f"{journal['run_id']}.json", journal)
    fault_point("after_journal")
    apply(root, journal, on_metadata)


def recover(root: Path, on_metadata) -> list[str]:
    """Finish committed runs whose process died mid-commit; drop staging of uncommitted ones.
    Returns the run ids that were rolled forward."""
    done = []
    jdir = root / JOURNAL
    for jf in sorted(jdir.glob("*.json")) if jdir.exists() else []:
        journal = json.loads(jf.read_text())
        log.warning("recovering run %s: replaying its committed journal", journal["run_id"])
        apply(root, journal, on_metadata)
        done.append(journal["run_id"])
    for d in (root / STAGING, root / TRASH):
        if d.exists():
            for child in d.iterdir():
                log.warning("removing debris of an interrupted run: %s", child)
                shutil.rmtree(child, ignore_errors=True)
    return done
