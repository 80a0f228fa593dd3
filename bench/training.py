"""Training throughput: the production train step against the ways it used to run, in one run.

    python -m bench.training [--rows 960] [--steps 30] [--batch-size 32] [--repeats 1]

Every variant trains the packaged MiniLM from the same starting weights on the same real tweets
(the bundled Sentiment140 sample) with the production batch stream (``training.data.TrainBatches``)
and train step (``training.model.make_train_step``), each in a Python process of its own (the CPU
allocator is chosen before TensorFlow starts), one after another, ``--repeats`` rounds:

  production     dynamic padding, TF's pooled CPU allocator, the embedding gradient dense
  glibc+sparse   the step as it ran before 2026-11-30: glibc malloc for TF's tensors, the word
                 embeddings' gradient applied as IndexedSlices (Adam's sparse path)
  fixed64        the production step with every row padded to 64 (the tutorial's padding)

Each process first runs one step per batch of the sample, so that every batch shape has been
seen (the first steps of a shape run at half speed), then times ``--steps`` steps. It reports
examples/s and, over the timed steps, the process's system CPU time and page faults, which is
where the old step lost its time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (pooled allocator, dense embedding gradient, fixed padding)
    "production": (True, True, None),
    "glibc+sparse": (False, False, None),
    "fixed64": (True, True, 64),
}


def one(args) -> dict:
    """Time one variant in this process (the allocator chosen by the parent's environment)."""
    import resource

    from sentiment_core.tfenv import tf
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import Source, TrainBatches, prepare

    _, dense, fixed = VARIANTS[args.variant]
    t = tf()
    base = M.resolve_base_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        prepare([Source(args.data)], Path(tmp) / "data", seed=42, max_rows=args.rows)
        M.load_tokenizer(base).save_pretrained(tmp)
        enc = TextEncoder(Path(tmp) / "tokenizer.json", 64)
        model = M.build_classifier(M.load_encoder(base))
        opt = M.make_optimizer(5e-5, 1000, 0.06, 0.01, False)
        step = M.make_train_step(model, opt, t.distribute.get_strategy(), False, dense_embedding_grads=dense)
        batches = list(TrainBatches(Path(tmp) / "data", enc, "tweet-v1", args.batch_size, 42, fixed).epoch(0))
        for ids, mask, y in batches:  # every shape once
            step(ids, mask, y)[0].numpy()
        timed = [batches[i % len(batches)] for i in range(args.steps)]
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        n = tokens = 0
        for ids, mask, y in timed:
            step(ids, mask, y)[0].numpy()
            n += len(y)
            tokens += ids.size
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"examples_per_sec": n / wall, "mean_padded_length": tokens / n, "seconds": wall,
            "sys_share": (r1.ru_stime - r0.ru_stime) / max(wall, 1e-9),
            "page_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / len(timed), "warmup_steps": len(batches)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=960, help="sample rows (80%% of them train: 24 batches of 32)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per variant, after one step per batch")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=1, help="rounds of all variants (medians are printed)")
    p.add_argument("--data", default=str(ROOT / "data" / "sample" / "sentiment140_sample.csv"))
    p.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)  # one, in this process
    args = p.parse_args(argv)
    from sentiment_core.tfenv import CPU_POOL_ENV  # the variable's name only: TensorFlow is not imported

    if args.variant:
        print(json.dumps(one(args)), flush=True)
        return 0

    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for name, (pooled, _, _) in VARIANTS.items():
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", CPU_POOL_ENV: "true" if pooled else "false"}
            cmd = [sys.executable, "-m", "bench.training", "--variant", name, "--rows", str(args.rows),
                   "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--data", args.data]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if r.returncode:
                raise SystemExit(f"variant {name} failed: {r.stderr[-1500:]}")
            res = json.loads(r.stdout.strip().splitlines()[-1])
            runs[name].append(res)
            print(f"{name}: {res['examples_per_sec']:.1f} examples/s, padded length {res['mean_padded_length']:.1f}, "
                  f"system CPU {res['sys_share']:.0%} of the wall time, {res['page_faults_per_step']:.0f} page faults/step",
                  flush=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    base = med["production"]["examples_per_sec"]
    print(f"\n{'variant':14s} {'examples/s':>10s} {'vs production':>14s} {'system CPU':>11s} {'faults/step':>12s}")
    for n, m in med.items():
        print(f"{n:14s} {m['examples_per_sec']:10.1f} {m['examples_per_sec'] / base:13.2f}x {m['sys_share']:10.0%} "
              f"{m['page_faults_per_step']:12.0f}")
    print(json.dumps({"medians": med, "runs": runs, "rows": args.rows, "steps": args.steps, "repeats": args.repeats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
