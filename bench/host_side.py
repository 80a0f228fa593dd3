"""The scorer's host side (what bounds a GPU's throughput): normalise, tokenize, sort by length,
pad per mini-batch, in tweets/s against the same steps done the plain way, in one run.

    python -m bench.host_side [--model ARTIFACT] [--input ARCHIVE] [--rows 8192] [--threads 1,0]

- plain: ``tweet_v1_reference`` (the normaliser's definition as plain regexes) and the tokenizer
  called as its library documents (``tokenizers``, its own truncation, ``encode_batch_fast``);
- scorer: ``tweet_v1`` and ``TextEncoder.encode`` (``sentiment_core``), which must give the
  same ids (checked here).

On each input set (the archive's tweets; its English ones; the bundled Sentiment140 sample),
``--rows`` tweets (the set repeated), alternately, 9 times each: the median. ``--threads``: the
tokenizer's threads, 0 for every core. A GPU process spends this host time per tweet while the
GPU waits; on CPU it is ~1% of the model's time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from bench.scoring import DEFAULT_INPUT, FALLBACK_INPUT, ROOT, ensure_model, load_texts

ROUNDS = 9


def plain_encode(path: Path, max_length: int) -> Callable[[Sequence[str]], list[list[int]]]:
    """Texts -> token ids by the artifact's tokenizer called as its library documents it (its own
    truncation, no shortcuts): the GPU check's peer, and the plain way of the host side."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return lambda texts: [e.ids for e in tok.encode_batch_fast(list(texts))]


def measure(artifact: Path, sets: dict[str, list[str]], rows: int) -> dict:
    from sentiment_core.artifact import load_metadata
    from sentiment_core.text import get_normalizer, tweet_v1_reference
    from sentiment_core.tokenization import TextEncoder

    meta = load_metadata(artifact)
    fast = get_normalizer(meta["normalization"])
    slow = tweet_v1_reference if meta["normalization"] == "tweet-v1" else fast
    enc = TextEncoder(artifact / "tokenizer.json", meta["max_length"])

    def host(norm, encode):
        def run(texts):
            seqs = encode([norm(t) for t in texts])
            return seqs, list(enc.length_batches(seqs, 256, multiple=1))
        return run

    ways = {"plain": host(slow, plain_encode(artifact / "tokenizer.json", meta["max_length"])),
            "scorer": host(fast, enc.encode)}
    out = {}
    for name, unique in sets.items():
        texts = (unique * (rows // max(1, len(unique)) + 1))[:rows]
        if ways["plain"](texts)[0] != ways["scorer"](texts)[0]:
            raise SystemExit(f"FAIL: the scorer's host side gives other ids than the plain way on {name}")
        secs = {k: [] for k in ways}
        for _ in range(ROUNDS):
            for k, fn in ways.items():
                t0 = time.perf_counter()
                fn(texts)
                secs[k].append(time.perf_counter() - t0)
        rate = {k: len(texts) / statistics.median(v) for k, v in secs.items()}
        out[name] = {"tweets": len(unique), "plain_tweets_per_second": rate["plain"],
                     "scorer_tweets_per_second": rate["scorer"], "speedup": rate["scorer"] / rate["plain"]}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.host_side")
    p.add_argument("--model", type=Path)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT if DEFAULT_INPUT.exists() else FALLBACK_INPUT)
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--threads", default="1,0", help="tokenizer threads per measurement, 0 = every core")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    artifact = args.model or ensure_model(ROOT / "out" / "bench")
    sets = {"archive": load_texts(args.input), "archive, lang en": load_texts(args.input, "en"),
            "sentiment140 sample": load_texts(ROOT / "data" / "sample" / "sentiment140_sample.csv")}
    sets = {k: v for k, v in sets.items() if v}
    if args.child is not None:  # one thread setting per process: the tokenizer's pool is sized once
        print(json.dumps(measure(artifact, sets, args.rows)))
        return 0
    report = {}
    for threads in (int(t) for t in args.threads.split(",")):
        env = dict(os.environ, TOKENIZERS_PARALLELISM="true" if threads != 1 else "false")
        if threads > 1:
            env["RAYON_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "-m", "bench.host_side", "--model", str(artifact), "--input", str(args.input),
               "--rows", str(args.rows), "--child", str(threads)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            print(res.stdout + res.stderr)
            return res.returncode
        label = f"{threads} thread" if threads == 1 else f"{threads or os.cpu_count()} threads"
        report[label] = json.loads(res.stdout.strip().splitlines()[-1])
        for name, r in report[label].items():
            print(f"{label:10s} {name:22s} ({r['tweets']:5d} tweets): plain {r['plain_tweets_per_second']:8,.0f} tweets/s, "
                  f"scorer {r['scorer_tweets_per_second']:8,.0f} tweets/s: {r['speedup']:.2f}x")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
