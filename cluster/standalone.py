"""A Spark standalone cluster on this machine, and the scoring job submitted to it the way a real
cluster runs it.

    .venv/bin/python -m cluster.standalone --model ARTIFACT --input data/sample/archive \\
        [--compare-local] [--job-arg=--partitions --job-arg=4]

1. Builds or reuses the bundle (:mod:`cluster.package`): ``env.tar.gz``, ``model.tar.gz``,
   ``tweet_sentiment.zip``.
2. Starts a master and two workers on 127.0.0.1 from the installed pyspark (``spark-class``), each
   worker with its own ``SPARK_WORKER_DIR``, one core and one fake GPU from its own discovery
   script. Where the machine allows a private mount namespace (root, or unprivileged user
   namespaces), the workers - so their executors and Python workers - run with the driver's venv,
   the project's source folders, the bundle folder and the model artifact hidden under empty tmpfs
   mounts: they can only use what was shipped to them (``isolated`` in the report).
3. Submits ``score.py`` from the bundle in client mode with ``--archives env.tar.gz#env,
   model.tar.gz#NAME``, ``--py-files tweet_sentiment.zip``, ``spark.pyspark.python=./env/bin/python``
   and GPU and memory settings.
4. Checks: exit status 0, the summary reconciles, the app ran on this master, every worker ran an
   executor that unpacked ``env/`` and the model, every executor got GPU address "0" (event log).
   ``--compare-local`` first runs ``python -m jobs.score`` on ``local[2]`` with the same input and
   model, and compares wall time and the scores table (every column equal, scores within 1e-6: the
   executors' scores can differ from local mode's in the last bit for a few rows).
5. Stops the cluster, always, and verifies that no process of it is left.

The last stdout line is a JSON report; the exit status is 0 when every check passed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cluster import check, package

log = logging.getLogger("cluster.standalone")

ROOT = package.ROOT
DEFAULT_BASE = ROOT / "out" / "cluster" / "standalone"
SOURCE_DIRS = ("sentiment_core", "jobs", "training", "bench", "cluster")
GPU_JSON = '{"name":"gpu","addresses":["0"]}'


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(spark_home_dir: Path, **extra: str) -> dict:
    """Environment for Spark processes: no driver venv on PATH, no PYSPARK_*/PYTHONPATH/VIRTUAL_ENV."""
    venv_bin = str(Path(sys.prefix) / "bin") if sys.prefix != sys.base_prefix else None
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("PYSPARK_", "SPARK_")) or k in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env.update(SPARK_HOME=str(spark_home_dir), SPARK_LOCAL_IP="127.0.0.1", TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def isolation_flags() -> list[str] | None:
    """``unshare`` flags that give a private mount namespace here (plain, else inside a user
    namespace), or None when neither works (then the cluster runs without isolation)."""
    if not shutil.which("unshare"):
        return None
    probe = tempfile.mkdtemp(prefix="ts-unshare-")
    try:
        for flags in (["-m", "--propagation", "private"], ["-r", "-m", "--propagation", "private"]):
            r = subprocess.run(["unshare", *flags, "--", "sh", "-c", f"mount -t tmpfs tmpfs {shlex.quote(probe)}"],
                               capture_output=True, timeout=20)
            if r.returncode == 0:
                return flags
        return None
    finally:
        os.rmdir(probe)


class StandaloneCluster:
    """A master and ``workers`` workers on 127.0.0.1, started from pyspark's ``spark-class`` as
    foreground child processes (each in its own session), stopped by :meth:`stop` (also on
    ``__exit__``), which then checks that no process using ``base`` is left."""

    def __init__(self, base: Path, workers: int = 2, cores: int = 1, memory: str = "6g",
                 hide: tuple[Path, ...] = (), isolate: str = "auto"):
        self.base = Path(base).resolve()
        self.n_workers, self.cores, self.memory = workers, cores, memory
        self.home = spark_home()
        self.flags = None if isolate == "no" else isolation_flags()
        if isolate == "yes" and self.flags is None:
            raise RuntimeError("--isolate yes: no private mount namespace available here (needs root or user namespaces)")
        self.hide = tuple(Path(h).resolve() for h in hide) if self.flags else ()
        for h in self.hide:
            if self.base == h or h in self.base.parents:
                raise ValueError(f"the cluster folder {self.base} is inside {h}, which the workers must not see")
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.master_url = self.webui = None
        self.gpu_scripts: list[Path] = []

    @property
    def isolated(self) -> bool:
        return self.flags is not None

    def _spawn(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        logf = open(self.base / "logs" / f"{name}.log", "wb")
        try:
            p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=self.base, start_new_session=True)
        finally:
            logf.close()
        self.procs.append((name, p))
        return p

    def _log_tail(self, name: str, n: int = 3000) -> str:
        try:
            return (self.base / "logs" / f"{name}.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def master_state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui}/json/", timeout=5) as r:
            return json.loads(r.read())

    def _wait(self, what: str, ok, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}:\n{self._log_tail(name)}")
            try:
                if ok(self.master_state()):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def start(self) -> "StandaloneCluster":
        for d in ("logs", "conf"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        port, self.webui = free_port(), free_port()
        self.master_url = f"spark://127.0.0.1:{port}"
        env = clean_env(self.home, SPARK_CONF_DIR=str(self.base / "conf"))
        self._spawn("master", [str(self.home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
                               "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(self.webui)], env)
        self._wait("the master", lambda s: s.get("status") == "ALIVE")
        home_seen = self.home
        if self.isolated:
            home_seen = self.base / "spark-home"  # the workers see pyspark here: its venv is hidden from them
            home_seen.mkdir(exist_ok=True)
        for i in range(self.n_workers):
            wdir = self.base / f"worker-{i}"
            (wdir / "spark-work").mkdir(parents=True, exist_ok=True)
            gpu = wdir / "discover_gpu.sh"
            gpu.write_text(f"#!/bin/sh\n# fake GPU for worker {i}: Spark's resource scheduling without a GPU\n"
                           f"echo '{GPU_JSON}'\n")
            gpu.chmod(0o755)
            self.gpu_scripts.append(gpu)
            props = wdir / "worker.conf"
            props.write_text(f"spark.worker.resource.gpu.amount 1\nspark.worker.resource.gpu.discoveryScript {gpu}\n")
            cmd = [str(home_seen / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
                   "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                   "--work-dir", str(wdir / "spark-work"), "--webui-port", "0", "--properties-file", str(props),
                   self.master_url]
            wenv = clean_env(home_seen, SPARK_CONF_DIR=str(self.base / "conf"), SPARK_WORKER_DIR=str(wdir / "spark-work"))
            if self.isolated:
                mounts = [f"mount --bind {shlex.quote(str(self.home))} {shlex.quote(str(home_seen))}"]
                mounts += [f"mount -t tmpfs -o size=1m,mode=0755 tmpfs {shlex.quote(str(h))}" for h in self.hide]
                script = "set -e\n" + "\n".join(mounts) + '\nexec "$@"\n'
                cmd = ["unshare", *self.flags, "--", "sh", "-c", script, "sh", *cmd]
            self._spawn(f"worker-{i}", cmd, wenv)
        self._wait(f"{self.n_workers} workers", lambda s: s.get("aliveworkers") == self.n_workers)
        return self

    def stop(self, timeout: float = 30.0) -> list[tuple[int, str]]:
        """Stop workers, then the master (SIGTERM to each session, SIGKILL after ``timeout``), then
        anything else still using the cluster folder (executors, Python workers). Returns what
        could not be stopped (empty when all is gone)."""
        for name, p in reversed(self.procs):  # workers first: they stop their executors
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs: SIGKILL", name, timeout)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        left = check.processes_using(self.base)
        if left:
            check.kill_all([pid for pid, _ in left], signal.SIGTERM)
            check.kill_all(check.wait_gone([pid for pid, _ in left], 15.0))
            still = set(check.wait_gone([pid for pid, _ in left], 10.0))
            left = [(pid, cmd) for pid, cmd in left if pid in still]
        return left

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        left = self.stop()
        if left:
            raise RuntimeError(f"processes left after stopping the cluster: {left}")


def submit(cluster: StandaloneCluster, bundle: dict, job_args: list[str], conf: dict | None = None,
           timeout: float = 1200.0) -> dict:
    """spark-submit the bundle's ``score.py`` to the cluster in client mode; returns rc, wall time,
    the summary (last stdout line), the command and the event log folder."""
    events = cluster.base / "events"
    events.mkdir(exist_ok=True)
    driver_dir = cluster.base / "driver"
    driver_dir.mkdir(exist_ok=True)
    settings = {
        "spark.executor.cores": str(cluster.cores),
        "spark.executor.memory": "1g",
        # a Python worker's address-space limit (RLIMIT_AS): importing TensorFlow alone maps ~1.7 GB
        # (2g failed with MemoryError in `import tensorflow`), the model and Arrow batches come on top
        "spark.executor.pyspark.memory": "4g",
        "spark.executor.memoryOverhead": "1g",      # YARN/K8s container size; standalone ignores it
        "spark.executor.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.discoveryScript": str(cluster.gpu_scripts[0]),
        "spark.task.resource.gpu.amount": "1",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": str(events), "spark.eventLog.compress": "false",
        **(conf or {}),
    }
    bdir = Path(bundle["bundle"])
    cmd = ([str(spark_home() / "bin" / "spark-submit"), "--master", cluster.master_url, "--deploy-mode", "client"]
           + package.submit_args(bdir, bundle["model"]["alias"], sys.executable, settings)
           + [str(bdir / "score.py")] + job_args)
    t0 = time.perf_counter()
    with open(cluster.base / "logs" / "driver.err", "wb") as err:
        proc = subprocess.run(cmd, cwd=driver_dir, env=clean_env(spark_home()), stdout=subprocess.PIPE, stderr=err,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    wall = time.perf_counter() - t0
    out = proc.stdout.decode(errors="replace")
    (cluster.base / "logs" / "driver.out").write_text(out)
    return {"rc": proc.returncode, "wall_seconds": round(wall, 1), "summary": check.last_json_line(out),
            "command": cmd, "events": str(events)}


def run_local(job_args: list[str], master: str = "local[2]", timeout: float = 1200.0) -> dict:
    """``python -m jobs.score`` with the driver's venv on ``master`` (the embedded baseline)."""
    env = clean_env(spark_home(), PYSPARK_SUBMIT_ARGS=f"--master {master} pyspark-shell",
                    PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    cmd = [sys.executable, "-m", "jobs.score", *job_args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout)
    wall = time.perf_counter() - t0
    out = proc.stdout.decode(errors="replace")
    return {"rc": proc.returncode, "wall_seconds": round(wall, 1), "summary": check.last_json_line(out),
            "command": ["PYSPARK_SUBMIT_ARGS=" + shlex.quote(env["PYSPARK_SUBMIT_ARGS"])] + cmd,
            "stderr_tail": proc.stderr.decode(errors="replace")[-3000:]}


def executor_dirs(cluster: StandaloneCluster, alias: str) -> dict[str, list[dict]]:
    """Per worker: the executor folders of every application, and whether the shipped env and
    model were unpacked there."""
    out = {}
    for i in range(cluster.n_workers):
        rows = []
        for d in sorted((cluster.base / f"worker-{i}" / "spark-work").glob("app-*/*")):
            if d.is_dir():
                rows.append({"dir": str(d.relative_to(cluster.base)), "env": os.path.lexists(d / "env" / "bin" / "python"),
                             "model": (d / alias / "metadata.json").is_file()})
        out[f"worker-{i}"] = rows
    return out


_STAMP = re.compile(r"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d) ")


def _stamped(path: Path):
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        m = _STAMP.match(line)
        if m:
            yield datetime.datetime.strptime(m.group(1), "%y/%m/%d %H:%M:%S"), line


def shipping_seconds(cluster: StandaloneCluster) -> dict:
    """Where a cold start's time goes, from the logs: the driver unpacking env.tar.gz (client mode
    unpacks --archives on the driver too), and per executor from its first fetch of a shipped file
    to its first task (fetch + unpack of the env and the model)."""
    out: dict = {}
    lines = list(_stamped(cluster.base / "logs" / "driver.err"))
    for i, (t, line) in enumerate(lines):
        if "Unpacking an archive" in line and package.ENV_ARCHIVE in line and i + 1 < len(lines):
            out["driver_env_unpack"] = (lines[i + 1][0] - t).seconds
            break
    for err in sorted(cluster.base.glob("worker-*/spark-work/app-*/*/stderr")):
        fetch = next((t for t, line in _stamped(err) if "Fetching spark://" in line), None)
        task = next((t for t, line in _stamped(err) if "Running task" in line), None)
        if fetch and task:
            out[f"executor_ready:{err.parent.relative_to(cluster.base)}"] = (task - fetch).seconds
    return out


def run(model: str, inputs: list[str], base: Path = DEFAULT_BASE, output: str | None = None,
        job_args: tuple[str, ...] = (), compare_local: bool = False, isolate: str = "auto",
        bundle_dir: Path = package.DEFAULT_OUT, keep_work: bool = False) -> dict:
    """The whole exercise (see the module docstring); returns the report."""
    base = Path(base).resolve()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    output = str(Path(output).resolve()) if output else str(base / "output")
    t0 = time.perf_counter()
    bundle = package.build(model, Path(bundle_dir))
    report: dict = {"bundle": bundle["bundle"], "env_bytes": bundle["env"]["bytes"], "env_cached": bundle["env"]["cached"],
                    "env_pack_seconds": bundle["env"]["pack_seconds"], "package_seconds": round(time.perf_counter() - t0, 1)}
    # the driver runs in its own folder: paths must not depend on the caller's working directory
    args = ["--input", *(str(Path(i).resolve()) for i in inputs), "--model", bundle["model"]["source"], *job_args]
    if compare_local:
        # executors that hold a (fake) GPU score with TensorFlow; so does the baseline, whatever
        # backend `auto` would pick on a CPU-only local[2]
        backend = [] if "--backend" in job_args else ["--backend", "tf"]
        local = run_local(args + backend + ["--output", str(base / "local-output")])
        report["local"] = {k: local[k] for k in ("rc", "wall_seconds", "command")}
        report["local"]["job_wall_seconds"] = (local["summary"] or {}).get("wall_seconds")
        if local["rc"] != 0:
            report["local"]["stderr_tail"] = local["stderr_tail"]
    hide = [Path(sys.prefix)] if sys.prefix != sys.base_prefix else []
    hide += [ROOT / d for d in SOURCE_DIRS if (ROOT / d).is_dir()]
    # the artifact's parent, not the artifact: an empty mount at the driver's model path would be a
    # folder there, while on a real cluster's nodes that path does not exist at all
    hide += [Path(bundle["bundle"]), Path(bundle["model"]["source"]).parent]
    for h in hide:
        for p in [*inputs, output]:
            if Path(p).resolve() == h.resolve() or h.resolve() in Path(p).resolve().parents:
                raise ValueError(f"{p} is inside {h}, which the workers must not see; put it elsewhere")
    cluster = StandaloneCluster(base, hide=tuple(hide), isolate=isolate)
    checks: dict[str, bool] = {}
    try:
        cluster.start()
        report.update(master=cluster.master_url, workers=cluster.n_workers, isolated=cluster.isolated,
                      hidden_from_workers=[str(h) for h in cluster.hide])
        res = submit(cluster, bundle, args + ["--output", output])
        summary = res["summary"] or {}
        report["cluster"] = {"rc": res["rc"], "wall_seconds": res["wall_seconds"], "job_wall_seconds": summary.get("wall_seconds"),
                             "command": shlex.join(res["command"])}
        report["summary"] = {k: summary.get(k) for k in ("run_id", "records_read", "scored", "rejected", "delete_notices",
                                                         "filtered_lang", "filtered_duplicate", "reconciled", "model_version")}
        checks["exit_0"] = res["rc"] == 0
        checks["reconciled"] = summary.get("reconciled") is True
        events = check.read_events(res["events"])
        state = cluster.master_state()
        report["app_ids"] = check.app_ids(events)
        finished = {a.get("id") for a in state.get("completedapps", []) if a.get("state") == "FINISHED"}
        checks["ran_on_this_master"] = bool(report["app_ids"]) and set(report["app_ids"]) <= finished
        dirs = executor_dirs(cluster, bundle["model"]["alias"])
        report["executor_dirs"] = dirs
        checks["every_worker_ran_an_executor_with_env_and_model"] = all(
            rows and all(r["env"] and r["model"] for r in rows) for rows in dirs.values())
        execs = check.executors(events)
        report["executors"] = execs
        checks["every_executor_got_gpu_0"] = bool(execs) and all(e["resources"].get("gpu") == ["0"] for e in execs)
        report["task_end_reasons"] = dict(check.task_end_reasons(events))
        report["failed_attempts"] = check.failed_attempts(events)
        report["shipping_seconds"] = shipping_seconds(cluster)
        checks["no_failed_task_attempts"] = not report["failed_attempts"]
        if res["rc"] != 0:
            report["driver_err_tail"] = (base / "logs" / "driver.err").read_text(errors="replace")[-3000:]
            report["driver_out_tail"] = (base / "logs" / "driver.out").read_text(errors="replace")[-3000:]
    finally:
        left = cluster.stop()
        report["left_running"] = left
        checks["nothing_left_running"] = not left and all(p.poll() is not None for _, p in cluster.procs)
        if not keep_work and not left:  # the unpacked env is 2+ GB per executor; logs stay
            for d in base.glob("worker-*/spark-work/app-*/*"):
                for name in (package.ENV_ALIAS, bundle["model"]["alias"]):
                    if (d / name).is_dir() and not (d / name).is_symlink():
                        shutil.rmtree(d / name, ignore_errors=True)
    if compare_local:
        checks["local_exit_0"] = report["local"]["rc"] == 0
        if checks["local_exit_0"] and checks.get("exit_0"):
            # separate executor processes and local mode can differ in the last bit of a float32 score
            # for a few rows (3 of 20,000 measured; labels equal); local[N] vs local[N] is bit for bit
            mine, local = check.read_scores(output), check.read_scores(base / "local-output")
            report["score_deltas_vs_local"] = check.score_deltas(mine, local)
            diff = check.diff_scores(mine, local, score_tol=1e-6)
            report["outputs_differ"] = diff
            checks["same_output_as_local"] = diff is None
    report["output"] = output
    report["checks"] = checks
    report["ok"] = all(checks.values())
    return report


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m cluster.standalone", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model artifact directory")
    p.add_argument("--input", nargs="+", required=True, help="input files or folders (must be visible to the workers)")
    p.add_argument("--output", help="job output folder (default: BASE/output)")
    p.add_argument("--base", default=str(DEFAULT_BASE), help="cluster folder: worker dirs, logs, event log (emptied first)")
    p.add_argument("--bundle", default=str(package.DEFAULT_OUT), help="bundle folder (cluster.package --out)")
    p.add_argument("--compare-local", action="store_true", help="also run python -m jobs.score on local[2] and compare")
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto",
                   help="hide the venv, sources, bundle and model from the workers (auto: where possible)")
    p.add_argument("--keep-work", action="store_true", help="keep the executors' unpacked env and model")
    p.add_argument("--job-arg", action="append", default=[], help="extra option for jobs/score.py (repeat), e.g. --job-arg=--partitions --job-arg=4")
    a = p.parse_args(argv)
    report = run(a.model, a.input, Path(a.base), a.output, tuple(a.job_arg), a.compare_local, a.isolate, Path(a.bundle),
                 a.keep_work)
    for k, v in report["checks"].items():
        print(f"{'ok  ' if v else 'FAIL'} {k}", file=sys.stderr)
    if "cluster" in report:
        print(f"cluster: {report['cluster']['command']}", file=sys.stderr)
        line = f"wall: standalone {report['cluster']['wall_seconds']} s"
        if "local" in report:
            line += f", local[2] {report['local']['wall_seconds']} s"
        print(line, file=sys.stderr)
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
