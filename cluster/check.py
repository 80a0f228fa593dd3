"""Checks shared by the standalone-cluster script and the fault tests: output tables read without
Spark (as a downstream reader sees them), Spark event logs, and the processes a run left behind."""
from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

RUN_COLUMNS = ("run_id", "scored_at")  # differ between two runs of the same input by design


# ---------------------------------------------------------------------------------------------
# Output tables


def read_scores(output: str | os.PathLike, with_run: bool = False):
    """The ``scores`` table of a job's output as a reader sees it (pyarrow, hive partitions; files
    and folders starting with '.' or '_', such as Spark's staging folders, are not data), sorted.
    Without ``with_run`` the per-run columns are dropped, so two runs of the same input compare equal."""
    import pandas as pd
    import pyarrow.dataset as ds

    root = Path(output) / "scores"
    if not root.is_dir():
        return pd.DataFrame()
    table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table()
    df = table.to_pandas()
    for c in ("model_version", "dt"):
        if c in df:
            df[c] = df[c].astype(str)
    if not with_run:
        df = df.drop(columns=[c for c in RUN_COLUMNS if c in df])
    if df.empty:
        return df.reset_index(drop=True)
    return df.sort_values(["model_version", "dt", "tweet_id"], kind="stable").reset_index(drop=True)


def diff_scores(a, b, score_tol: float = 0.0) -> str | None:
    """None when two score tables are equal - every column exactly, the float32 ``score`` bit for
    bit or, with ``score_tol``, within that absolute difference - else why not."""
    if list(a.columns) != list(b.columns):
        return f"columns differ: {list(a.columns)} != {list(b.columns)}"
    if len(a) != len(b):
        return f"row counts differ: {len(a)} != {len(b)}"
    for c in a.columns:
        x, y = a[c], b[c]
        if c == "score" and score_tol:
            same = (x.astype("float64") - y.astype("float64")).abs() <= score_tol
        else:
            same = (x.isna() == y.isna()) & ((x == y) | x.isna())
        if not bool(same.all()):
            i = int((~same).to_numpy().nonzero()[0][0])
            return f"column {c!r} differs at row {i} (tweet {a['tweet_id'].iloc[i]}): {x.iloc[i]!r} != {y.iloc[i]!r}"
    return None


def score_deltas(a, b) -> dict:
    """How far the scores of two tables of the same rows are apart: rows not bit-identical, max |diff|."""
    import numpy as np

    if len(a) != len(b) or list(a["tweet_id"]) != list(b["tweet_id"]):
        return {"comparable": False}
    d = np.abs(a["score"].to_numpy(np.float64) - b["score"].to_numpy(np.float64))
    return {"comparable": True, "rows": len(a), "scores_not_identical": int((d > 0).sum()),
            "max_abs_diff": float(d.max()) if len(d) else 0.0}


def partition_files(output: str | os.PathLike) -> dict[str, list[str]]:
    """Visible data files per ``model_version=V/dt=D`` partition of the scores table."""
    root = Path(output) / "scores"
    parts: dict[str, list[str]] = {}
    if not root.is_dir():
        return parts
    for mv in sorted(root.glob("model_version=*")):
        for d in sorted(mv.glob("dt=*")):
            parts[f"{mv.name}/{d.name}"] = sorted(p.name for p in d.iterdir() if not p.name.startswith((".", "_")))
    return parts


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


# ---------------------------------------------------------------------------------------------
# Spark event logs (spark.eventLog.enabled=true, spark.eventLog.compress=false)


def read_events(event_dir: str | os.PathLike) -> list[dict]:
    events = []
    # one file per application, or (rolling event logs, Spark 4's default) a folder of events_* files
    for f in sorted(Path(event_dir).rglob("*")):
        if f.is_file() and not f.name.endswith(".inprogress") and not f.name.startswith(("appstatus_", ".")):
            with open(f) as fh:
                events.extend(json.loads(line) for line in fh if line.strip())
    return events


def app_ids(events: list[dict]) -> list[str]:
    return [e["App ID"] for e in events if e.get("Event") == "SparkListenerApplicationStart" and e.get("App ID")]


def task_end_reasons(events: list[dict]) -> Counter:
    """Counts of task end reasons ('Success', 'ExceptionFailure', 'ExecutorLostFailure', ...)."""
    return Counter(e["Task End Reason"]["Reason"] for e in events if e.get("Event") == "SparkListenerTaskEnd")


def failed_attempts(events: list[dict]) -> list[dict]:
    """Failed task attempts: stage, partition, attempt, reason, executor, and the error's first line."""
    out = []
    for e in events:
        if e.get("Event") != "SparkListenerTaskEnd" or e["Task End Reason"]["Reason"] == "Success":
            continue
        r, info = e["Task End Reason"], e["Task Info"]
        error = str(r.get("Full Stack Trace") or r.get("Description") or r.get("Loss Reason") or "")
        out.append({"stage": e["Stage ID"], "partition": info.get("Partition ID", info.get("Index")),
                    "attempt": info["Attempt"], "executor": info["Executor ID"], "reason": r["Reason"],
                    "error": error})
    return out


def executors(events: list[dict]) -> list[dict]:
    """Executors added to the application, with the resources (e.g. GPU addresses) each got."""
    out = []
    for e in events:
        if e.get("Event") == "SparkListenerExecutorAdded":
            info = e["Executor Info"]
            out.append({"id": e["Executor ID"], "host": info.get("Host"), "cores": info.get("Total Cores"),
                        "resources": {k: v.get("addresses") for k, v in (info.get("Resources") or {}).items()}})
    return out


def removed_executors(events: list[dict]) -> list[dict]:
    return [{"id": e["Executor ID"], "reason": e.get("Removed Reason")} for e in events
            if e.get("Event") == "SparkListenerExecutorRemoved"]


# ---------------------------------------------------------------------------------------------
# Processes (Linux /proc)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children first)."""
    kids: dict[int, list[int]] = {}
    for p in _pids():
        pp = _ppid(p)
        if pp is not None:
            kids.setdefault(pp, []).append(p)
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def ancestors(pid: int) -> list[int]:
    out = []
    p = _ppid(pid)
    while p and p > 1:
        out.append(p)
        p = _ppid(p)
    return out


def processes_using(path: str | os.PathLike) -> list[tuple[int, str]]:
    """Live processes whose working directory or command line is under ``path``."""
    path = str(Path(path).resolve())
    found = []
    for p in _pids():
        if p == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{p}/cwd")
        except OSError:
            cwd = ""
        cmd = cmdline(p)
        if cwd == path or cwd.startswith(path + os.sep) or path in cmd:
            found.append((p, cmd[:200]))
    return found


def loads_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's native library is mapped into the process (its import has begun)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any("libtensorflow" in line or "_pywrap_tensorflow" in line for line in f)
    except OSError:
        return False


def kill_all(pids, sig=signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids, timeout: float = 30.0) -> list[int]:
    """Wait until none of ``pids`` is alive (zombies count as gone); returns the ones still alive."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.2)
    return alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
