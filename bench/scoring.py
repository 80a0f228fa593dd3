"""Scoring throughput, every row measured in one run on the same real tweets.

    python -m bench.scoring [--model ARTIFACT] [--input ARCHIVE] [--tutorial-rows 1024] [--sizes 1,4,16]

(a) the tutorial's way: the slow (Python) BertTokenizer, every row padded to 64, Keras
    ``model.predict(batch_size=64)`` around the same network;
(t) the peer to beat: hand-tuned PyTorch (bench/torch_baseline.py, run in ``.venv-torch``);
(tf/onnx/onnx-int8) the in-process scorer (``sentiment_core.scorer``) with each backend: Rust
    tokenizer, rows sorted by length, padded per mini-batch (the backend's default size), every
    text through the model (``dedup=False``: the same work as (a) and (t));
(b) the in-process scorer as the job runs it (the Spark rows' backend): each distinct text once;
(c) the Spark job end to end on ``local[2]``: archive JSON (bz2) in, Parquet out, counted from the
    job's own summary: the first job of a fresh session (cold: Python workers and model load
    included; the JVM is up) and the median of the same job run 3 times more (warm);
(x) cost against size: the Spark job (warm) on archives of 1x, 4x and 16x the input's tweets,
    resampled from it by ``bench.make_archive`` (one minute file per 1x), with the peak RSS of
    the Python workers after each; every text through the model (resampling repeats texts far
    more than the stream does), so against the backend's in-process row, not (b);
(p) the largest of them as a user runs it: ``python -m jobs.score`` in a new process (a cold
    job in a JVM of its own, as every spark-submit is).

(t) and the in-process rows: one warm pass, then the median of 3 timed passes over all texts; (t)
runs twice, before and after the in-process rows, and gives the median of its 6 passes.

Without ``--model`` it exports an artifact from the packaged MiniLM through the real training path
(``--max-steps 1``: the weights barely move, the speed is the same as a trained model's).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "archives" / "twitter-v1.1" / "2021-01-01-0729.json.bz2"
FALLBACK_INPUT = ROOT / "data" / "sample" / "archive"
# fp32 multiply-adds of one MiniLM-L6 forward per token (6 layers x (4*384^2 + 2*384*1536)) x 2 FLOP
FLOP_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)
REPEATS = 3


def ensure_model(workdir: Path) -> Path:
    art = workdir / "model" / "artifact"
    if art.exists():
        return art
    from training.train import main

    rc = main(["--data", str(ROOT / "data" / "sample" / "sentiment140_sample.csv"), "--output-dir",
               str(workdir / "model"), "--max-rows", "300", "--max-steps", "1", "--epochs", "1"])
    if rc:
        raise SystemExit("could not export a benchmark model")
    return art


def load_texts(path: Path, lang: str | None = None) -> list[str]:
    """The input's tweets (each id once), in order; only those of language ``lang`` when given."""
    from sentiment_core import readers

    seen, texts = set(), []
    for f in readers.list_input_files([str(path)]):
        for kind, rec in readers.read_file(f):
            if kind == "tweet" and rec["tweet_id"] not in seen and (lang is None or rec["lang"] == lang):
                seen.add(rec["tweet_id"])
                texts.append(rec["text"])
    return texts


def tutorial_way(artifact: Path, texts: list[str]) -> float:
    from transformers import BertTokenizer

    from sentiment_core.tfenv import keras, tf

    t, k = tf(), keras()
    meta = json.loads((artifact / "metadata.json").read_text())
    loaded = t.saved_model.load(str(artifact / "saved_model"))  # kept alive: the signature needs its variables
    sig = loaded.signatures["serving_default"]
    ids_in = k.Input((64,), dtype="int32", name="input_ids")
    mask_in = k.Input((64,), dtype="int32", name="attention_mask")
    out = k.layers.Lambda(lambda x: sig(input_ids=x[0], attention_mask=x[1])["score"])([ids_in, mask_in])
    model = k.Model([ids_in, mask_in], out)
    model._saved_model = loaded
    tok = BertTokenizer(str(artifact / "vocab.txt"), do_lower_case=meta["do_lower_case"])
    model.predict([np.zeros((64, 64), np.int32), np.ones((64, 64), np.int32)], batch_size=64, verbose=0)  # warm
    t0 = time.perf_counter()
    enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="np")
    model.predict([enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)], batch_size=64, verbose=0)
    return len(texts) / (time.perf_counter() - t0)


def timed(fn, n: int) -> float:
    """Items/s of ``fn`` over ``n`` items: one warm call (shapes traced, sessions and memory pools
    grown), then the median of REPEATS timed calls."""
    fn()
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return float(np.median(rates))


def in_process(artifact: Path, texts: list[str], backend: str) -> tuple[float, float]:
    from sentiment_core.scorer import Scorer
    from sentiment_core.text import normalize_all

    scorer = Scorer(str(artifact), backend=backend, intra_op_threads=os.cpu_count())
    rate = timed(lambda: scorer.score(texts, dedup=False), len(texts))
    lens = [len(s) for s in scorer.encoder.encode(normalize_all(texts, scorer.normalization))]  # what the model sees
    return rate, float(np.mean(lens))


def torch_baseline(artifact: Path, texts: list[str], python: Path, workdir: Path) -> list[float] | None:
    """Hand-tuned PyTorch on the same texts (bench/torch_baseline.py), in a torch environment:
    the tweets/s of each timed pass."""
    import subprocess

    from sentiment_core.text import normalize_all

    meta = json.loads((artifact / "metadata.json").read_text())
    base = meta.get("training", {}).get("base_model_path")
    if not python.exists() or not base:
        print(f"(t) PyTorch baseline skipped: no {python} (make bench-torch) or no base model path", flush=True)
        return None
    f = workdir / "texts.json"
    f.write_text(json.dumps(normalize_all(texts, meta["normalization"])))
    r = subprocess.run([str(python), str(ROOT / "bench" / "torch_baseline.py"), "--base-model", base, "--texts",
                        str(f), "--threads", str(os.cpu_count()), "--max-length", str(meta["max_length"])],
                       capture_output=True, text=True)
    if r.returncode:
        print(f"(t) PyTorch baseline failed: {r.stderr[-500:]}", flush=True)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])["passes"]


def matmul_peak_gflops(n: int = 1024, reps: int = 20) -> float:
    """This machine's measured fp32 matmul rate (numpy's BLAS, all cores): the FLOP bound's peak."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ a
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def worker_peak_rss_mb() -> float:
    """The largest peak RSS (VmHWM) in MB over this machine's PySpark Python workers (processes
    forked from ``pyspark.daemon``, which keep its command line)."""
    peak = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"pyspark.daemon" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        except OSError:
            continue
        peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def scaled_archives(source: Path | None, tweets: int, sizes: list[int], workdir: Path) -> dict[int, Path]:
    """Archives of size x ``tweets`` tweets resampled from the real minute file, one file per x."""
    from bench.make_archive import generate

    out = {}
    for x in sizes:
        d = workdir / f"archive_{x}x_{tweets}"
        if not (d / "_done").exists():
            shutil.rmtree(d, ignore_errors=True)
            generate(d, days=1, tweets_per_day=x * tweets, files_per_day=x, source=source)
            (d / "_done").write_text("")
        out[x] = d
    return out


def spark_job(artifact: Path, inputs: Path, out: Path, backend: str, scaled: dict[int, Path],
              paired=None) -> dict:
    """The score job on ``local[2]``: the first (cold) job, REPEATS warm jobs, then one per scaled
    archive. ``paired`` (optional, a callable timing one in-process (b) pass in seconds) runs right
    before each warm job, so that each job has a (b) figure of the same minute: this VM's speed
    drifts by 5-20% over the minutes between the in-process rows and the Spark rows."""
    from jobs import score
    from sentiment_core.spark import DEDUP_TEXTS_CONF, get_session

    def job(path: Path) -> dict:
        shutil.rmtree(out, ignore_errors=True)
        s = score.run(score.parse_args(["--input", str(path), "--model", str(artifact), "--output", str(out),
                                        "--backend", backend]), spark=spark)
        return {"scored": s["scored"], "model_rows": s["model_rows"], "seconds": s["wall_seconds"],
                "tweets_per_second": s["scored"] / s["wall_seconds"],
                "worker_peak_rss_mb": worker_peak_rss_mb()}

    spark = get_session("bench", conf={"spark.master": "local[2]"})
    try:
        res = {"cold": job(inputs)}
        # warm: the median of REPEATS more jobs, as the in-process rows take the median of passes
        # (the second job of a JVM still runs ~15% slower than the ones after it)
        runs = []
        for _ in range(REPEATS):
            b_seconds = paired() if paired else None
            runs.append(job(inputs))
            if b_seconds:
                runs[-1]["paired_ratio"] = b_seconds / runs[-1]["seconds"]
        res.update(warm=sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2],
                   warm_seconds=[r["seconds"] for r in runs], warm_runs=runs, sizes={})
        # the resampled archives draw their tweets with replacement (at 16x each text ~16 times,
        # against ~11% repeats in the real minute): every text through the model, so these rows
        # measure cost against size, not the repeat rate
        spark.conf.set(DEDUP_TEXTS_CONF, "false")
        for x, path in scaled.items():
            res["sizes"][x] = job(path)
            print(f"(x) Spark warm, {x}x: {res['sizes'][x]}", flush=True)
        return res
    finally:
        spark.stop()


def fresh_process_job(artifact: Path, inputs: Path, out: Path, backend: str) -> dict:
    """The job as a user runs it, ``python -m jobs.score`` in a new process on ``local[2]``: every
    run is a first (cold) job in a JVM of its own. The process's wall time, start to exit, and the
    job summary's (which starts before the Spark session)."""
    import subprocess

    from sentiment_core.spark import DEDUP_TEXTS_CONF

    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": f"--master local[2] --conf {DEDUP_TEXTS_CONF}=false pyspark-shell"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "jobs.score", "--input", str(inputs), "--model", str(artifact),
                        "--output", str(out), "--overwrite", "--backend", backend],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    process = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"python -m jobs.score failed: {r.stderr[-800:]}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    return {"scored": s["scored"], "job_seconds": s["wall_seconds"], "process_seconds": process,
            "job_tweets_per_second": s["scored"] / s["wall_seconds"], "process_tweets_per_second": s["scored"] / process}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT if DEFAULT_INPUT.exists() else FALLBACK_INPUT)
    p.add_argument("--tutorial-rows", type=int, default=1024, help="rows for (a), which is slow")
    p.add_argument("--workdir", type=Path, default=ROOT / "out" / "bench")
    p.add_argument("--torch-python", type=Path, default=ROOT / ".venv-torch" / "bin" / "python",
                   help="a Python with torch + transformers for the PyTorch baseline (make bench-torch)")
    p.add_argument("--spark-backend", default="auto", help="backend of the Spark rows")
    p.add_argument("--sizes", default="1,4,16", help="multiples of the input for the cost-vs-size rows ('' to skip)")
    args = p.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    args.workdir.mkdir(parents=True, exist_ok=True)
    artifact = args.model or ensure_model(args.workdir)
    texts = load_texts(args.input)
    print(f"{len(texts)} distinct real tweets from {args.input}; model {artifact}; {os.cpu_count()} cores", flush=True)
    peak = matmul_peak_gflops()
    a = tutorial_way(artifact, texts[: args.tutorial_rows])
    print(f"(a) tutorial: {a:.1f} tweets/s", flush=True)
    # the peer runs before and after the in-process rows, and its rate is the median of both
    # runs' passes: this VM's speed drifts by 5-10% over minutes, and the ratio should not ride on it
    torch_passes = torch_baseline(artifact, texts, args.torch_python, args.workdir)
    print(f"(t) PyTorch, first run: {torch_passes} tweets/s", flush=True)
    rates, mean_tokens = {}, 0.0
    for backend in ("tf", "onnx", "onnx-int8"):
        try:
            rates[backend], mean_tokens = in_process(artifact, texts, backend)
        except ValueError as e:  # an artifact without that backend
            print(f"({backend}) skipped: {e}", flush=True)
            continue
        print(f"({backend}) in-process scorer: {rates[backend]:.1f} tweets/s", flush=True)
    if torch_passes:
        after = torch_baseline(artifact, texts, args.torch_python, args.workdir) or []
        print(f"(t) PyTorch, second run: {after} tweets/s", flush=True)
        torch_passes += after
    t = float(np.median(torch_passes)) if torch_passes else None
    from sentiment_core.artifact import load_metadata
    from sentiment_core.scorer import resolve_backend
    from sentiment_core.text import normalize_all

    meta = load_metadata(artifact)
    spark_backend = resolve_backend(meta, args.spark_backend)
    repeats = 1 - len(set(normalize_all(texts, meta["normalization"]))) / len(texts)
    # (b): one scorer for its row and for the pass timed before each warm Spark job (spark_job's paired)
    from sentiment_core.scorer import Scorer

    b_scorer = Scorer(str(artifact), backend=spark_backend, intra_op_threads=os.cpu_count())

    def b_pass() -> float:
        t0 = time.perf_counter()
        b_scorer.score(texts, dedup=True)
        return time.perf_counter() - t0

    b = timed(b_pass, len(texts))
    print(f"(b) in-process scorer ({spark_backend}), each distinct text once ({repeats:.1%} of the tweets repeat "
          f"a text): {b:.1f} tweets/s", flush=True)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    src = args.input if args.input.is_file() else None
    scaled = scaled_archives(src, len(texts), sizes, args.workdir) if sizes else {}
    sp = spark_job(artifact, args.input, args.workdir / "spark_out", args.spark_backend, scaled, paired=b_pass)
    c_cold, c_warm, n = sp["cold"]["tweets_per_second"], sp["warm"]["tweets_per_second"], sp["warm"]["scored"]
    paired = [r["paired_ratio"] for r in sp["warm_runs"]]
    if scaled:
        x = max(scaled)
        sp["fresh_process"] = {x: fresh_process_job(artifact, scaled[x], args.workdir / "fresh_out", args.spark_backend)}
        print(f"(p) python -m jobs.score, {x}x, fresh process: {sp['fresh_process'][x]}", flush=True)
    mflop = FLOP_PER_TOKEN * mean_tokens / 1e6
    bound = peak * 1e3 / mflop
    ref = t or rates["tf"]
    rows = [("(a) tutorial: BertTokenizer, pad to 64, Keras predict", a)]
    if t:
        rows.append(("(t) PyTorch inference_mode, sorted dynamic padding by hand", t))
    names = {"tf": "TF SavedModel", "onnx": "ONNX Runtime fp32 (artifact model.onnx)",
             "onnx-int8": "ONNX Runtime int8 (artifact model.int8.onnx)"}
    rows += [(f"({k}) in-process scorer: Rust tokenizer, sorted dynamic padding, {names[k]}", v) for k, v in rates.items()]
    rows.append((f"(b) in-process scorer ({spark_backend}) as the job runs it: each distinct text once "
                 f"({repeats:.1%} of these tweets repeat one)", b))
    rows += [(f"(c) Spark local[2] job ({spark_backend}), archive JSON in, Parquet out, cold (first job)", c_cold),
             (f"(c) Spark local[2] job ({spark_backend}), warm (median of jobs 2-4, same session)", c_warm),
             (f"fp32 FLOP bound ({mflop:.0f} MFLOP/tweet at {mean_tokens:.1f} tokens, measured matmul peak "
              f"{peak:.0f} GFLOP/s)", bound)]
    ref_name = "(t)" if t else "(tf)"
    print(f"\n| method | tweets/s | vs (a) | vs {ref_name} | share of fp32 FLOP bound |\n|---|---|---|---|---|")
    for name, v in rows:
        print(f"| {name} | {v:.1f} | {v / a:.2f}x | {v / ref:.2f}x | {v / bound:.0%} |")
    print(f"Spark vs (b), in-process {spark_backend} with each distinct text once: warm {c_warm / b:.2f}, cold {c_cold / b:.2f}; "
          f"Python worker peak RSS {sp['warm']['worker_peak_rss_mb']:.0f} MB")
    print(f"Spark warm vs (b) paired, each warm job against a (b) pass run just before it in this process: "
          f"median {np.median(paired):.2f} (per job {', '.join(f'{r:.2f}' for r in paired)})")
    if sp["sizes"]:
        base, m = sp["sizes"][min(sp["sizes"])], rates[spark_backend]  # every text scored: vs the model path
        print(f"\n| Spark job, warm | tweets | seconds | tweets/s | vs smallest | vs in-process ({spark_backend}, every text) | worker peak RSS MB |"
              "\n|---|---|---|---|---|---|---|")
        for x, r in sp["sizes"].items():
            print(f"| {x}x | {r['scored']} | {r['seconds']:.1f} | {r['tweets_per_second']:.1f} | "
                  f"{r['tweets_per_second'] / base['tweets_per_second']:.2f} | {r['tweets_per_second'] / m:.2f} | "
                  f"{r['worker_peak_rss_mb']:.0f} |")
        if len(sp["sizes"]) >= 2:  # seconds = fixed + rows / marginal rate, from the two largest
            (x1, r1), (x2, r2) = sorted(sp["sizes"].items())[-2:]
            marginal = (r2["scored"] - r1["scored"]) / (r2["seconds"] - r1["seconds"])
            fixed = r2["seconds"] - r2["scored"] / marginal
            print(f"marginal rate {x1}x->{x2}x: {marginal:.1f} tweets/s ({marginal / m:.2f} of in-process); "
                  f"fixed cost per job {fixed:.1f} s")
        for x, r in sp.get("fresh_process", {}).items():
            print(f"python -m jobs.score in a fresh process, {x}x ({r['scored']} tweets): {r['process_seconds']:.1f} s "
                  f"from start to exit (JVM start, cold job), {r['process_tweets_per_second']:.1f} tweets/s, "
                  f"{r['process_tweets_per_second'] / m:.2f} of in-process")
    print(json.dumps({"tweets": len(texts), "spark_scored": n, "tutorial": a, "torch": t, "torch_passes": torch_passes, "in_process": rates,
                      "spark_backend": spark_backend, "in_process_dedup": b, "repeated_texts": repeats,
                      "spark_cold": c_cold, "spark_warm": c_warm,
                      "spark": sp,
                      "flop_bound": bound, "peak_gflops": peak, "mean_tokens": mean_tokens,
                      "warm_over_in_process": c_warm / b, "warm_over_in_process_paired": float(np.median(paired)),
                      "cold_over_in_process": c_cold / b,
                      "onnx_over_torch": rates.get("onnx", 0) / t if t else None,
                      "int8_over_torch": rates.get("onnx-int8", 0) / t if t else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
