"""GPU check: the scorer on one GPU (< 5 minutes). Prints throughput, the share of the GPU's
measured peak, agreement with the fp32 CPU reference, and a PyTorch peer on the same GPU.

    python -m bench.gpu_check [--model ARTIFACT] [--input ARCHIVE] [--rows 16384] [--lang en]
        [--backend auto|onnx-fp16|onnx|tf] [--reference FILE.npy] [--skip-spark] [--report FILE]

Needs an NVIDIA GPU and a GPU build of the backend: ``onnxruntime-gpu`` (CUDA 13) for the ONNX
backends (``auto`` picks the artifact's fp16 graph on a GPU), ``tensorflow[and-cuda]`` for ``tf``.

1. The backend sees the GPU, the scorer's session runs on it (provider, GPU memory of this
   process), and its scores match the fp32 reference on the input's distinct real tweets
   (``--reference``: positive-class probabilities saved by an earlier run of this script or
   computed here on CPU, from ``model.onnx``, else the SavedModel): max |diff| <= 1e-2 and at least
   99.9% identical labels, else it fails.
2. tweets/s over ``--rows`` tweets (the input's tweets repeated) at mini-batch sizes 64/256/1024
   with 1 and 2 mini-batches in flight (median of 3 passes after a warm one); the host side
   alone (normalise, tokenize, sort, pad) against the same done the plain way (``bench.host_side``,
   which fails unless both give the same ids). Then 1, 2, 4, 8 processes sharing the GPU,
   each scoring ``--rows`` at once with its share of the CPU cores, as Spark tasks with
   ``spark.task.resource.gpu.amount`` = 1/N do: tweets/s per GPU (the peer likewise), and at the
   most processes an A/B: the scorer with its host side done the plain way (``bench.host_side``:
   the normaliser's plain regexes, the library's own tokenizer call).
3. The PyTorch peer (when torch with CUDA is installed): transformers' ``BertModel`` with the
   artifact's weights (read from its fp16 graph), float16, SDPA attention, the artifact's
   tokenizer called as its library documents (``tokenizers``, truncation on, ``encode_batch_fast``),
   rows sorted by length and padded per mini-batch, ``torch.inference_mode``.
4. Share of peak: MiniLM's matmul FLOPs per tweet at the input's mean length against a measured
   fp16 matmul rate (torch, 8192^3) when torch is there.
5. With pyspark and Java installed (and not ``--skip-spark``): the Spark job on the input with
   ``spark.executor.resource.gpu.amount=1`` in ``local-cluster`` (discovery from nvidia-smi); every
   task must see a GPU address and score on it.

``--allow-cpu`` runs the same steps on CPU (a dry run of this script where there is no GPU).
Exits non-zero on any failure. The last line of stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.host_side import measure, plain_encode
from bench.scoring import FLOP_PER_TOKEN, timed

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZES = (64, 256, 1024)
WORKERS = (1, 2)
PROCESSES = (1, 2, 4, 8)
MAX_DIFF = 1e-2
MIN_AGREEMENT = 0.999


def nvidia_smi(*query: str) -> list[list[str]]:
    try:
        out = subprocess.run(["nvidia-smi", *query, "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def gpu_memory_of(pid: int) -> float | None:
    """MiB of GPU memory nvidia-smi reports for this process (None when it cannot tell)."""
    rows = nvidia_smi("--query-compute-apps=pid,used_memory")
    mine = [float(r[1]) for r in rows if len(r) > 1 and r[0] == str(pid) and r[1].replace(".", "").isdigit()]
    return sum(mine) if mine else None


def reference_scores(artifact: Path, texts: list[str], path: Path | None) -> np.ndarray:
    """fp32 CPU positive-class probabilities for ``texts`` (loaded from ``path`` when it exists)."""
    if path is not None and path.exists():
        ref = np.load(path)
        if len(ref) != len(texts):
            raise SystemExit(f"FAIL: reference {path} has {len(ref)} scores for {len(texts)} texts")
        return ref
    from sentiment_core.scorer import Scorer

    backend = "onnx" if (artifact / "model.onnx").is_file() else "tf"
    ref = Scorer(str(artifact), device="/CPU:0" if backend == "tf" else None, backend=backend).score(texts)[0]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, ref)
    return ref


def torch_available(device: str) -> str | None:
    """Why the PyTorch peer cannot run here, or None when it can."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        return str(e)
    if device == "cuda" and not torch.cuda.is_available():
        return "torch has no CUDA device"
    return None


def build_torch_peer(artifact: Path, device: str):
    """The PyTorch peer on the artifact's own weights (from model.fp16.onnx): a function
    (batch rows, texts) -> positive-class probabilities, and torch's version."""
    import onnx
    import torch
    from transformers import BertConfig, BertModel
    from onnx import numpy_helper

    from sentiment_core.artifact import load_metadata
    from sentiment_core.text import normalize_all
    from sentiment_core.tokenization import TextEncoder

    g = onnx.load(str(artifact / "model.fp16.onnx")).graph
    w = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    attrs = {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in g.node}
    n_layers = sum(1 for k in w if k.endswith("_qkv_w"))
    hidden = w["word_emb"].shape[1]
    cfg = BertConfig(vocab_size=w["word_emb"].shape[0], hidden_size=hidden, num_hidden_layers=n_layers,
                     num_attention_heads=int(attrs["l0_att"]["num_heads"]), intermediate_size=w["l0_ff1_w"].shape[1],
                     max_position_embeddings=w["pos_emb"].shape[0], layer_norm_eps=float(attrs["emb"]["epsilon"]),
                     attn_implementation="sdpa")
    model = BertModel(cfg, add_pooling_layer=False)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))  # noqa: E731
    sd = {"embeddings.word_embeddings.weight": t(w["word_emb"]), "embeddings.position_embeddings.weight": t(w["pos_emb"]),
          # the graph folds token type 0 into the position table
          "embeddings.token_type_embeddings.weight": torch.zeros(cfg.type_vocab_size, hidden),
          "embeddings.LayerNorm.weight": t(w["emb_ln_g"]), "embeddings.LayerNorm.bias": t(w["emb_ln_b"])}
    for i in range(n_layers):
        p = f"encoder.layer.{i}."
        for j, name in enumerate(("query", "key", "value")):
            sd[p + f"attention.self.{name}.weight"] = t(w[f"l{i}_qkv_w"][:, j * hidden:(j + 1) * hidden].T)
            sd[p + f"attention.self.{name}.bias"] = t(w[f"l{i}_qkv_b"][j * hidden:(j + 1) * hidden])
        for ours, theirs in (("ao", "attention.output.dense"), ("ff1", "intermediate.dense"), ("ff2", "output.dense")):
            sd[p + theirs + ".weight"] = t(w[f"l{i}_{ours}_w"].T)
            sd[p + theirs + ".bias"] = t(w[f"l{i}_{ours}_b"])
        for ours, theirs in (("ln1", "attention.output.LayerNorm"), ("ln2", "output.LayerNorm")):
            sd[p + theirs + ".weight"] = t(w[f"l{i}_{ours}_g"])
            sd[p + theirs + ".bias"] = t(w[f"l{i}_{ours}_b"])
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or any("position_ids" not in k and "token_type_ids" not in k for k in missing):
        raise SystemExit(f"FAIL: peer weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    head_w, head_b = t(w["head_w"]).to(device), t(w["head_b"]).to(device)

    meta = load_metadata(artifact)
    enc = TextEncoder(artifact / "tokenizer.json", meta["max_length"])  # for its length batches alone
    encode = plain_encode(artifact / "tokenizer.json", meta["max_length"])

    def run(batch: int, items: list[str]) -> np.ndarray:
        seqs = encode(normalize_all(items, meta["normalization"]))
        out = np.zeros(len(items), np.float32)
        with torch.inference_mode():
            for idx, ids, mask in enc.length_batches(seqs, batch, multiple=1):
                ids_t = torch.from_numpy(ids).to(device, non_blocking=True)
                mask_t = torch.from_numpy(mask).to(device, non_blocking=True)
                h = model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state.float()
                m = mask_t.unsqueeze(-1).float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-6)
                out[idx] = torch.sigmoid(pooled @ head_w + head_b)[:, -1].cpu().numpy()
        return out

    return run, torch.__version__


def torch_peer(artifact: Path, texts: list[str], check: list[str], batch_sizes, device: str) -> dict | None:
    """The peer's tweets/s per batch size over ``texts`` and its scores on ``check`` (to show it
    computes the same model)."""
    why = torch_available(device)
    if why:
        print(f"PyTorch peer skipped: {why}")
        return None
    run, version = build_torch_peer(artifact, device)
    rates = {bs: timed(lambda: run(bs, texts), len(texts)) for bs in batch_sizes}
    return {"rates": rates, "torch": version, "scores": run(max(batch_sizes), check)}


def _process(kind: str, artifact: str, backend: str, device: str, texts: list[str], batch: int, threads: int,
             barrier, results) -> None:
    """One of several processes sharing the GPU (as Spark tasks with a fractional GPU amount do):
    load, warm, wait for the others, score ``texts`` once, report (start, end)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    if kind in ("scorer", "scorer-plain-host"):
        from sentiment_core import text
        from sentiment_core.scorer import Scorer

        sc = Scorer(artifact, device=device, batch_size=batch, intra_op_threads=1, backend=backend)
        if kind == "scorer-plain-host":  # the A/B baseline: the host side done the plain way (bench.host_side)
            text.NORMALIZERS["tweet-v1"] = text.tweet_v1_reference
            sc.encoder.encode = plain_encode(Path(artifact) / "tokenizer.json", sc.encoder.max_length)
        fn = lambda: sc.score(texts, dedup=False)  # noqa: E731  (the input repeats its tweets: score every row, as the peer does)
    else:
        run, _ = build_torch_peer(Path(artifact), "cuda" if "GPU" in device else "cpu")
        fn = lambda: run(batch, texts)  # noqa: E731
    fn()
    barrier.wait()
    t0 = time.time()
    fn()
    results.put((t0, time.time()))


def shared_gpu_rate(kind: str, artifact: Path, backend: str, device: str, texts: list[str], batch: int,
                    processes: int) -> float:
    """tweets/s of ``processes`` processes scoring ``texts`` each at once on one GPU, the host's
    cores split between them."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // processes)
    procs = [ctx.Process(target=_process, args=(kind, str(artifact), backend, device, texts, batch, threads,
                                                barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    spans = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return processes * len(texts) / (max(e for _, e in spans) - min(s for s, _ in spans))


def fp16_matmul_tflops(device: str) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if device != "cuda" or not torch.cuda.is_available():
        return None
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192 ** 3 / (time.perf_counter() - t0) / 1e12


def spark_check(artifact: Path, input_path: Path, workdir: Path, backend: str, n_gpus: int, on_gpu: bool) -> dict:
    """The score job in local-cluster with GPU resource scheduling (discovery from nvidia-smi; a
    fake address "0" in a CPU dry run), and which GPU address and scorer device each task got."""
    from jobs import score
    from sentiment_core.spark import get_session

    disc = workdir / "gpus.sh"
    disc.parent.mkdir(parents=True, exist_ok=True)
    if on_gpu:
        disc.write_text("#!/bin/bash\nADDRS=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed 's/.*/\"&\"/' | paste -sd, -)\n"
                        "echo {\\\"name\\\": \\\"gpu\\\", \\\"addresses\\\": [$ADDRS]}\n")
    else:
        disc.write_text("#!/bin/bash\necho '{\"name\": \"gpu\", \"addresses\": [\"0\"]}'\n")
    disc.chmod(0o755)
    conf = {"spark.master": "local-cluster[1,4,8192]", "spark.worker.resource.gpu.amount": str(n_gpus),
            "spark.worker.resource.gpu.discoveryScript": str(disc),
            "spark.executor.resource.gpu.amount": str(n_gpus),
            "spark.executor.resource.gpu.discoveryScript": str(disc),
            "spark.task.resource.gpu.amount": "0.25"}  # no spark.executor.pyspark.memory: CUDA reserves more address space than it uses
    spark = get_session("gpu-check", conf=conf)
    try:
        out = workdir / "spark_out"
        shutil.rmtree(out, ignore_errors=True)
        s = score.run(score.parse_args(["--input", str(input_path), "--model", str(artifact), "--output", str(out),
                                        "--backend", backend]), spark=spark)
        import pandas as pd

        def where(batches):
            from sentiment_core.spark import task_gpu, worker_scorer

            for b in batches:
                sc = worker_scorer(str(artifact), None, backend)
                yield pd.DataFrame({"gpu": [task_gpu()] * len(b), "device": [sc.device] * len(b)})

        seen = spark.range(0, 64, numPartitions=8).mapInPandas(where, "gpu string, device string").distinct().collect()
    finally:
        spark.stop()
    print(f"tasks saw GPU addresses / scorer devices: {[(r.gpu, r.device) for r in seen]}")
    ok = all(r.gpu is not None and (not on_gpu or "GPU" in r.device or r.device.startswith("cuda")) for r in seen)
    print(f"Spark job on GPU executors: {s['scored']} tweets in {s['wall_seconds']:.1f}s "
          f"({s['tweets_per_second']:.0f} tweets/s end to end, cold), reconciled {s['reconciled']}")
    return {"ok": ok and bool(s["reconciled"]), **{k: s[k] for k in ("scored", "wall_seconds", "tweets_per_second")}}


def throughput(first: "Scorer", artifact: Path, backend: str, device: str, on_gpu: bool, texts: list[str],
               unique: list[str], ref: np.ndarray, mean_tokens: float, processes: list[int], report: dict) -> None:
    """Steps 2-4 of the module docstring, printed and added to ``report``. ``first`` is the
    loaded scorer with WORKERS[0] mini-batches in flight."""
    from sentiment_core.scorer import GPU_BATCH_SIZE, Scorer

    peer_device = "cuda" if on_gpu else "cpu"
    report["scorer"] = {}
    best = (0.0, None)
    for workers in WORKERS:
        scorer = first if workers == WORKERS[0] else Scorer(str(artifact), device=device, intra_op_threads=workers,
                                                           backend=backend)
        for bs in BATCH_SIZES:
            scorer.batch_size = bs
            # every row through the model: the input is the real tweets repeated, and the peer scores them all
            rate = timed(lambda: scorer.score(texts, dedup=False), len(texts))
            report["scorer"][f"batch{bs}_inflight{workers}"] = rate
            print(f"  batch {bs:5d}, {workers} in flight: {rate:10,.0f} tweets/s")
            best = max(best, (rate, (bs, workers)))

    peer = torch_peer(artifact, texts, unique, BATCH_SIZES, peer_device) if (artifact / "model.fp16.onnx").is_file() \
        else None
    shared = {}
    for kind in ("scorer", "torch") if peer else ("scorer",):
        batch = GPU_BATCH_SIZE if kind == "scorer" else max(peer["rates"], key=peer["rates"].get)
        for n in processes:
            shared[f"{kind}_{n}"] = r = shared_gpu_rate(kind, artifact, backend, device, texts, batch, n)
            print(f"{n} processes sharing the GPU ({kind}, batch {batch}): {r:10,.0f} tweets/s together")
    n = max(processes)  # A/B at the per-GPU setting: the same scorer with the host side done the plain way
    shared[f"scorer-plain-host_{n}"] = r = shared_gpu_rate("scorer-plain-host", artifact, backend, device,
                                                          texts, GPU_BATCH_SIZE, n)
    print(f"{n} processes sharing the GPU (scorer with the plain-regex normaliser and the library's tokenizer call, "
          f"batch {GPU_BATCH_SIZE}): {r:10,.0f} tweets/s together; the scorer: {shared[f'scorer_{n}'] / r:.2f}x")
    report["shared_gpu"] = shared
    if peer:
        pd_ = float(np.max(np.abs(peer["scores"] - ref)))
        print(f"PyTorch {peer['torch']} peer ({peer_device}, {'fp16' if on_gpu else 'fp32'}, SDPA): "
              + ", ".join(f"batch {b}: {r:,.0f}" for b, r in peer["rates"].items())
              + f" tweets/s; max |diff| vs reference {pd_:.2e}")
        report["torch_peer"] = {"rates": peer["rates"], "torch": peer["torch"], "max_abs_diff": pd_}
    tflops = fp16_matmul_tflops(peer_device)
    flop = FLOP_PER_TOKEN * mean_tokens
    rate, (bs, workers) = best
    report.update(best={"tweets_per_second": rate, "batch": bs, "in_flight": workers}, flop_per_tweet=flop,
                  fp16_matmul_tflops=tflops)
    line = f"best in one process: {rate:,.0f} tweets/s (batch {bs}, {workers} in flight) = {rate * flop / 1e12:.1f} TFLOP/s of matmul work"
    if tflops:
        report["share_of_peak"] = rate * flop / (tflops * 1e12)
        line += f", {report['share_of_peak']:.1%} of the measured fp16 matmul peak ({tflops:.0f} TFLOP/s)"
    if peer:
        top = max(peer["rates"].values())
        report["vs_torch_peer"] = rate / top
        line += f"; {rate / top:.2f}x the PyTorch peer's best ({top:,.0f})"
    print(line)
    ours = max(v for k, v in shared.items() if k.startswith("scorer_"))  # (not the A/B baseline: "scorer-plain-...")
    line = f"per GPU, processes sharing it: {ours:,.0f} tweets/s = {ours * flop / 1e12:.1f} TFLOP/s of matmul work"
    report["per_gpu"] = {"tweets_per_second": ours}
    if tflops:
        report["per_gpu"]["share_of_peak"] = ours * flop / (tflops * 1e12)
        line += f", {report['per_gpu']['share_of_peak']:.1%} of the measured peak"
    theirs = [v for k, v in shared.items() if k.startswith("torch_")]
    if theirs:
        report["per_gpu"]["vs_torch_peer"] = ours / max(theirs)
        line += f"; {ours / max(theirs):.2f}x the PyTorch peer's best ({max(theirs):,.0f})"
    print(line)


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # one process owns the host: tokenize on all cores
    from bench.scoring import DEFAULT_INPUT, FALLBACK_INPUT, ensure_model, load_texts

    p = argparse.ArgumentParser(prog="python -m bench.gpu_check")
    p.add_argument("--model", type=Path)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT if DEFAULT_INPUT.exists() else FALLBACK_INPUT)
    p.add_argument("--rows", type=int, default=16384)
    p.add_argument("--lang", help="only the input's tweets of this language (e.g. en: the model's language)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--reference", type=Path, help="fp32 reference scores (.npy); computed on CPU and saved if absent")
    p.add_argument("--workdir", type=Path, default=ROOT / "out" / "gpu_check")
    p.add_argument("--report", type=Path, help="also write the JSON report here")
    p.add_argument("--skip-spark", action="store_true")
    p.add_argument("--processes", type=lambda v: [int(x) for x in v.split(",")], default=list(PROCESSES),
                   help="process counts sharing the GPU, as Spark tasks with spark.task.resource.gpu.amount=1/N")
    p.add_argument("--spark-only", action="store_true", help="only the device and agreement checks and the Spark step")
    p.add_argument("--allow-cpu", action="store_true", help="dry run on CPU where there is no GPU")
    args = p.parse_args(argv)

    from sentiment_core.artifact import load_metadata
    from sentiment_core.scorer import Scorer, ort_cuda_available, resolve_backend
    from sentiment_core.text import normalize_all
    from sentiment_core.tokenization import TextEncoder

    failures = []
    gpus = nvidia_smi("--query-gpu=index,name,memory.total,driver_version")
    print(f"nvidia-smi: {gpus or 'no GPU'}")
    artifact = args.model or ensure_model(args.workdir)
    meta = load_metadata(artifact)
    backend = resolve_backend(meta, args.backend, gpu=True)
    if backend == "tf":
        from sentiment_core.tfenv import tf

        visible = [g.name for g in tf().config.list_physical_devices("GPU")]
        print(f"GPUs visible to TensorFlow: {visible}")
    else:
        visible = ["CUDAExecutionProvider"] if ort_cuda_available() else []
        print(f"onnxruntime providers: {__import__('onnxruntime').get_available_providers()}")
    on_gpu = bool(gpus and visible)
    if not on_gpu and not args.allow_cpu:
        print(f"FAIL: no GPU for backend {backend} (onnxruntime-gpu with CUDA 13 for the ONNX backends, "
              "tensorflow[and-cuda] for tf; check nvidia-smi)")
        return 1
    device = "/GPU:0" if on_gpu else "/CPU:0"

    unique = load_texts(args.input, args.lang)
    if not unique:
        print(f"FAIL: no tweets{f' in language {args.lang}' if args.lang else ''} in {args.input}")
        return 1
    texts = (unique * (args.rows // max(1, len(unique)) + 1))[: args.rows]
    enc = TextEncoder(artifact / "tokenizer.json", meta["max_length"])
    mean_tokens = float(np.mean([len(s) for s in enc.encode(normalize_all(unique, meta["normalization"]))]))
    hs = measure(artifact, {"input": unique}, len(texts))["input"]  # exits unless both ways give the same ids
    host, host_plain = hs["scorer_tweets_per_second"], hs["plain_tweets_per_second"]
    report = {"gpu": gpus[0][1] if gpus else None, "backend": backend, "rows": len(texts), "distinct_tweets": len(unique),
              "lang": args.lang, "mean_tokens": mean_tokens, "host_side_tweets_per_second": host,
              "host_side_plain_tweets_per_second": host_plain}
    print(f"{len(texts)} tweets ({len(unique)} distinct, real{f', lang {args.lang}' if args.lang else ''}), "
          f"{mean_tokens:.1f} tokens on average; host side alone (normalise, tokenize, sort, pad): {host:,.0f} tweets/s, "
          f"{host / host_plain:.2f}x the same done the plain way ({host_plain:,.0f}: bench.host_side)")

    scorer = Scorer(str(artifact), device=device, intra_op_threads=WORKERS[0], backend=backend)
    providers = scorer._session.get_providers() if hasattr(scorer, "_session") else [scorer.device]
    mem = gpu_memory_of(os.getpid()) if on_gpu else None
    print(f"scorer: backend {scorer.backend} on {scorer.device}, providers {providers}, "
          f"GPU memory of this process {mem} MiB, loaded in {scorer.load_seconds:.1f}s")
    report.update(device=scorer.device, providers=providers, gpu_memory_mib=mem)
    if on_gpu and not (scorer.device.startswith("cuda") or "GPU" in scorer.device):
        failures.append(f"scorer runs on {scorer.device}, not the GPU")
    ref = reference_scores(artifact, unique, args.reference)
    got, _ = scorer.score(unique)
    thr = float(meta["threshold"])
    diff = float(np.max(np.abs(got - ref)))
    agree = float(np.mean((got >= thr) == (ref >= thr)))
    print(f"vs fp32 CPU reference on {len(unique)} tweets: max |diff| {diff:.2e}, labels identical {agree:.4%}")
    report.update(max_abs_diff=diff, label_agreement=agree)
    if diff > MAX_DIFF or agree < MIN_AGREEMENT:
        failures.append(f"scores differ from the reference (max |diff| {diff:.2e}, agreement {agree:.4%})")
    if not args.spark_only:
        throughput(scorer, artifact, backend, device, on_gpu, texts, unique, ref, mean_tokens, args.processes, report)
    del scorer

    if args.skip_spark:
        print("Spark on GPU executors: skipped (--skip-spark)")
    elif shutil.which("java") is None or __import__("importlib.util").util.find_spec("pyspark") is None:
        print("Spark on GPU executors: skipped (needs pyspark and Java on this machine)")
    else:
        report["spark"] = spark_check(artifact, args.input, args.workdir, backend, max(1, len(gpus)), on_gpu)
        if not report["spark"]["ok"]:
            failures.append("a Spark task ran without its GPU or the job did not reconcile")
    report["failures"] = failures
    for f in failures:
        print(f"FAIL: {f}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
