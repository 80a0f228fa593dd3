"""Peer baseline for bench.scoring: the same BERT scored by hand-tuned PyTorch.

Runs under a Python that has torch (not the project's environment, which has no torch):

    .venv-torch/bin/python bench/torch_baseline.py --base-model DIR --texts FILE.json [--threads 2]

The encoder is transformers' PyTorch ``BertModel`` on the base checkpoint (the fine-tuned
classifier has the same shape: a linear head on the mean-pooled states costs nothing), with the
same Rust tokenizer, rows sorted by length, padded per mini-batch, ``torch.inference_mode``.
Prints one JSON object: the median tweets/s of ``--repeats`` warm passes over all texts (the
in-process rows of bench.scoring are measured the same way).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base-model", required=True)
    p.add_argument("--texts", required=True, help="JSON list of (already normalised) texts")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="timed passes after the warm one (median reported)")
    a = p.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    torch.set_num_threads(a.threads)
    texts = json.load(open(a.texts))
    tok = Tokenizer.from_file(f"{a.base_model}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(a.max_length)
    model = BertModel.from_pretrained(a.base_model, add_pooling_layer=False).eval()

    def run() -> np.ndarray:
        seqs = [e.ids for e in tok.encode_batch(texts)]
        order = np.argsort([len(s) for s in seqs], kind="stable")
        out = np.zeros((len(texts), model.config.hidden_size), np.float32)
        with torch.inference_mode():
            for i in range(0, len(order), a.batch_size):
                idx = order[i:i + a.batch_size]
                n = max(len(seqs[j]) for j in idx)
                ids = torch.zeros((len(idx), n), dtype=torch.long)
                mask = torch.zeros((len(idx), n), dtype=torch.long)
                for r, j in enumerate(idx):
                    ids[r, :len(seqs[j])] = torch.tensor(seqs[j])
                    mask[r, :len(seqs[j])] = 1
                h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(h.dtype)
                out[idx] = ((h * m).sum(1) / m.sum(1).clamp(min=1e-6)).numpy()
        return out

    run()  # warm
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        run()
        rates.append(len(texts) / (time.perf_counter() - t0))
    print(json.dumps({"tweets": len(texts), "tweets_per_second": float(np.median(rates)), "passes": rates,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
