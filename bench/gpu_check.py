"""GPU check (run on a machine with an NVIDIA GPU and `tensorflow[and-cuda]==2.21.0`; < 5 minutes).

    python -m bench.gpu_check [--model ARTIFACT] [--input ARCHIVE] [--rows 4096]

1. TensorFlow sees the GPU; 2. the in-process scorer runs on it (device placement logged,
GPU memory in use > 0) at batch sizes 64/256/1024, printing tweets/s each; 3. the Spark job
scores the same archive with `spark.executor.resource.gpu.amount=1` in `local-cluster` with a
discovery script from nvidia-smi, and every task sees a GPU address. Exits non-zero on failure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from bench.scoring import DEFAULT_INPUT, FALLBACK_INPUT, ensure_model, load_texts

    p = argparse.ArgumentParser(prog="python -m bench.gpu_check")
    p.add_argument("--model", type=Path)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT if DEFAULT_INPUT.exists() else FALLBACK_INPUT)
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--workdir", type=Path, default=ROOT / "out" / "gpu_check")
    p.add_argument("--skip-spark", action="store_true")
    args = p.parse_args(argv)
    from sentiment_core.tfenv import tf

    t = tf()
    gpus = t.config.list_physical_devices("GPU")
    print(f"GPUs visible to TensorFlow: {[g.name for g in gpus]}")
    if not gpus:
        print("FAIL: no GPU visible (install tensorflow[and-cuda]==2.21.0 and check nvidia-smi)")
        return 1
    artifact = args.model or ensure_model(args.workdir)
    texts = load_texts(args.input)
    texts = (texts * (args.rows // max(1, len(texts)) + 1))[: args.rows]
    from sentiment_core.scorer import Scorer

    report = {"gpus": [g.name for g in gpus], "rows": len(texts)}
    for bs in (64, 256, 1024):
        scorer = Scorer(str(artifact), batch_size=bs)
        scorer.score(texts[:bs * 2])
        t0 = time.perf_counter()
        scorer.score(texts)
        rate = len(texts) / (time.perf_counter() - t0)
        mem = t.config.experimental.get_memory_info("GPU:0")["current"]
        print(f"in-process scorer on {scorer.device}, batch {bs}: {rate:.0f} tweets/s, GPU memory in use {mem / 2**20:.0f} MiB")
        report[f"in_process_batch_{bs}"] = rate
        if mem <= 0:
            print("FAIL: the model is not on the GPU")
            return 1
    if not args.skip_spark:
        from jobs import score
        from sentiment_core.spark import get_session

        disc = args.workdir / "gpus.sh"
        disc.parent.mkdir(parents=True, exist_ok=True)
        disc.write_text("#!/bin/bash\nADDRS=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed 's/.*/\"&\"/' | paste -sd, -)\n"
                        "echo {\\\"name\\\": \\\"gpu\\\", \\\"addresses\\\": [$ADDRS]}\n")
        disc.chmod(0o755)
        conf = {"spark.master": "local-cluster[1,4,8192]", "spark.worker.resource.gpu.amount": str(len(gpus)),
                "spark.worker.resource.gpu.discoveryScript": str(disc),
                "spark.executor.resource.gpu.amount": str(len(gpus)),
                "spark.executor.resource.gpu.discoveryScript": str(disc),
                "spark.task.resource.gpu.amount": "0.25", "spark.executor.pyspark.memory": "4g"}
        spark = get_session("gpu-check", conf=conf)
        try:
            out = args.workdir / "spark_out"
            shutil.rmtree(out, ignore_errors=True)
            s = score.run(score.parse_args(["--input", str(args.input), "--model", str(artifact), "--output", str(out),
                                            "--batch-size", "256"]), spark=spark)
            import pandas as pd

            def where(batches):
                from sentiment_core.spark import task_gpu, worker_scorer

                for b in batches:
                    sc = worker_scorer(str(artifact), 64)
                    yield pd.DataFrame({"gpu": [task_gpu()] * len(b), "device": [sc.device] * len(b)})

            seen = spark.range(0, 64, numPartitions=8).mapInPandas(where, "gpu string, device string").distinct().collect()
        finally:
            spark.stop()
        print(f"tasks saw GPU addresses / TF devices: {[(r.gpu, r.device) for r in seen]}")
        if any(r.gpu is None or not r.device.startswith("/GPU") for r in seen):
            print("FAIL: a task ran without its GPU")
            return 1
        print(f"Spark job on GPU executors: {s['scored']} tweets in {s['wall_seconds']:.1f}s "
              f"({s['tweets_per_second']:.0f} tweets/s end to end, cold), reconciled {s['reconciled']}")
        report["spark"] = {k: s[k] for k in ("scored", "wall_seconds", "tweets_per_second", "reconciled")}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
