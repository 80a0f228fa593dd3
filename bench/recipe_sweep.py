"""Training-recipe sweep on a GPU, in PyTorch: how far the base model goes on a run's split.

    python -m bench.recipe_sweep prepare --run RUN_DIR --out DIR      (here: the project's venv)
    python bench/recipe_sweep.py sweep --dir DIR [--only 0,3] [--budget 420]   (a GPU machine with
                                                                     torch and transformers)

``prepare`` writes what the sweep needs and nothing else, small enough to carry to a GPU machine:
the run's own train/validation/test split (``RUN_DIR/data``) normalised and tokenised as
training.train does, and the base model's weights in float16 (trained in float32 there).
``sweep`` trains each recipe with the model and optimiser of training.train (BERT, mean/cls/pooled
sentence vector, dropout, dense sigmoid head; AdamW, linear warm-up then decay to 0, global-norm
clip 1.0, no decay on LayerNorm and biases), evaluates validation and test twice per epoch, and
prints per recipe the test accuracy of the evaluation with the lowest validation loss (what
training.train keeps) and of the one with the best validation accuracy. Each recipe is one line
of JSON in ``$OUT/sweep.jsonl``; ``--only`` runs a subset (run several processes at once: one
process leaves an H100 mostly idle).

This is a way to choose a recipe quickly, not a second trainer: a recipe is adopted only after
training.train, on the CPU or GPU it runs on, reproduces it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

RECIPES = [  # (name, overrides of the training.train defaults below)
    ("training.train default: lr 5e-5, batch 32, 2 epochs", {}),
    ("lr 1e-4", {"lr": 1e-4}),
    ("lr 2e-5, 3 epochs", {"lr": 2e-5, "epochs": 3}),
    ("lr 1e-4, batch 64, 3 epochs", {"lr": 1e-4, "bs": 64, "epochs": 3}),
    ("seed 1", {"seed": 1}),
    ("seed 2", {"seed": 2}),
    ("cls pooling", {"pooling": "cls"}),
    ("lr 1e-4, layer-wise lr decay 0.8, 3 epochs", {"lr": 1e-4, "llrd": 0.8, "epochs": 3}),
    ("label smoothing 0.1, 3 epochs", {"smooth": 0.1, "epochs": 3}),
    ("lr 3e-5, 4 epochs", {"lr": 3e-5, "epochs": 4}),
    ("dropout 0.2, 3 epochs", {"dropout": 0.2, "epochs": 3}),
    ("lr 2e-4, batch 128, 3 epochs", {"lr": 2e-4, "bs": 128, "epochs": 3}),
    ("pooler output", {"pooling": "pooled"}),
    ("lr 2e-5, 3 epochs, seed 1", {"lr": 2e-5, "epochs": 3, "seed": 1}),
    ("lr 5e-5, 3 epochs", {"epochs": 3}),
]
DEFAULTS = {"lr": 5e-5, "epochs": 2, "bs": 32, "pooling": "mean", "dropout": 0.1, "wd": 0.01, "warmup": 0.06,
            "seed": 42, "llrd": 1.0, "smooth": 0.0}


def prepare(run: Path, out: Path) -> None:
    import pyarrow.parquet as pq
    from safetensors.numpy import load_file

    from sentiment_core.text import normalize_all
    from sentiment_core.tokenization import TextEncoder
    from training.model import resolve_base_model

    cfg = json.loads((run / "run_config.json").read_text())["config"]
    base = Path(resolve_base_model(cfg["base_model"]))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "base_fp16.npz", **{k: v.astype(np.float16) for k, v in load_file(base / "model.safetensors").items()})
    (out / "config.json").write_text((base / "config.json").read_text())
    enc = TextEncoder(str(base / "tokenizer.json"), cfg["max_length"])
    arrays = {}
    for split in ("train", "validation", "test"):
        files = sorted((run / "data").glob(f"{split}*.parquet"))
        t = {k: sum((pq.read_table(f).column(k).to_pylist() for f in files), []) for k in ("text", "label")}
        seqs = [np.asarray(s, np.int32) for s in enc.encode(normalize_all(t["text"], cfg["normalization"]))]
        arrays[f"{split}_ids"] = np.concatenate(seqs)
        arrays[f"{split}_off"] = np.cumsum([0] + [len(s) for s in seqs])
        arrays[f"{split}_y"] = np.asarray(t["label"], np.float32)
        print(f"{split}: {len(seqs)} rows, {np.mean([len(s) for s in seqs]):.1f} tokens", flush=True)
    np.savez(out / "data.npz", **arrays)


def sweep(d: Path, only: list[int] | None, budget: float, rows: int | None = None) -> None:
    import torch
    import torch.nn as nn
    from transformers import BertConfig, BertModel

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = json.loads((d / "config.json").read_text())
    weights = {k: torch.from_numpy(v.astype(np.float32)) for k, v in np.load(d / "base_fp16.npz").items()}
    z = dict(np.load(d / "data.npz"))  # read each array once (an NpzFile reads it again on every access)
    data = {s: ([z[f"{s}_ids"][a:b] for a, b in zip(z[f"{s}_off"][:-1], z[f"{s}_off"][1:])], z[f"{s}_y"])
            for s in ("train", "validation", "test")}
    if rows:  # a quick look (or a smoke run on CPU): a seeded sample of each split
        pick = {s: np.random.default_rng(0).permutation(len(y))[:rows] for s, (_, y) in data.items()}
        data = {s: ([seqs[i] for i in pick[s]], y[pick[s]]) for s, (seqs, y) in data.items()}
    out = Path(os.environ.get("OUT", d))

    def pad(seqs):
        ids = np.zeros((len(seqs), max(len(s) for s in seqs)), np.int64)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = s
        ids = torch.from_numpy(ids).to(dev)
        return ids, (ids != 0).long()

    class Classifier(nn.Module):
        def __init__(self, pooling, dropout):
            super().__init__()
            self.bert = BertModel(BertConfig(**cfg))
            missing, _ = self.bert.load_state_dict(weights, strict=False)
            assert not [k for k in missing if "position_ids" not in k], missing
            self.pooling, self.drop, self.head = pooling, nn.Dropout(dropout), nn.Linear(cfg["hidden_size"], 1)
            nn.init.xavier_uniform_(self.head.weight)  # Keras Dense's default
            nn.init.zeros_(self.head.bias)

        def forward(self, ids, m):
            o = self.bert(input_ids=ids, attention_mask=m)
            if self.pooling == "mean":
                h = o.last_hidden_state
                x = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
            else:
                x = o.last_hidden_state[:, 0] if self.pooling == "cls" else o.pooler_output
            return self.head(self.drop(x)).squeeze(-1)

    @torch.no_grad()
    def evaluate(model, split):
        model.eval()
        seqs, y = data[split]
        order = np.argsort([len(s) for s in seqs])
        p = np.zeros(len(seqs), np.float32)
        for i in range(0, len(seqs), 512):
            idx = order[i:i + 512]
            p[idx] = torch.sigmoid(model(*pad([seqs[j] for j in idx]))).cpu().numpy()
        model.train()
        p = p.clip(1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), float(np.mean((p >= 0.5) == (y == 1)))

    def run(name, lr, epochs, bs, pooling, dropout, wd, warmup, seed, llrd, smooth):
        t0 = time.time()
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = Classifier(pooling, dropout).to(dev)
        layers = cfg["num_hidden_layers"]
        groups = []
        for n, prm in model.named_parameters():
            depth = int(n.split(".")[3]) + 1 if n.startswith("bert.encoder.layer.") else (0 if n.startswith("bert.embeddings") else layers + 1)
            groups.append({"params": [prm], "lr": lr * llrd ** (layers + 1 - depth),  # the head and pooler: lr
                           "weight_decay": 0.0 if ("LayerNorm" in n or n.endswith("bias")) else wd})
        opt = torch.optim.AdamW(groups, lr=lr)
        seqs, y = data["train"]
        per_epoch = math.ceil(len(seqs) / bs)
        total, warm = per_epoch * epochs, int(per_epoch * epochs * warmup)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
        loss_fn = nn.BCEWithLogitsLoss()
        hist = []
        for ep in range(epochs):
            perm = rng.permutation(len(seqs))
            for b in range(per_epoch):
                idx = perm[b * bs:(b + 1) * bs]
                target = torch.from_numpy(y[idx]).to(dev) * (1 - smooth) + 0.5 * smooth
                loss = loss_fn(model(*pad([seqs[j] for j in idx])), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                if b + 1 in (per_epoch // 2, per_epoch):
                    vl, va = evaluate(model, "validation")
                    _, ta = evaluate(model, "test")
                    hist.append({"epoch": round(ep + (b + 1) / per_epoch, 2), "val_loss": round(vl, 4),
                                 "val_acc": round(va, 4), "test_acc": round(ta, 4)})
        res = {"name": name, **dict(lr=lr, epochs=epochs, bs=bs, pooling=pooling, dropout=dropout, seed=seed,
                                    llrd=llrd, smooth=smooth),
               "best_by_val_loss": min(hist, key=lambda h: h["val_loss"]),
               "best_by_val_acc": max(hist, key=lambda h: h["val_acc"]), "hist": hist,
               "seconds": round(time.time() - t0, 1)}
        print(json.dumps(res), flush=True)
        with open(out / "sweep.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
        return res

    print(f"train/validation/test {[len(data[s][0]) for s in data]}; {dev}; torch {torch.__version__}", flush=True)
    t0, done = time.time(), []
    for i in (only if only is not None else range(len(RECIPES))):
        if done and time.time() - t0 + 1.5 * max(r["seconds"] for r in done) > budget:
            print(f"budget: stopped before {RECIPES[i][0]!r}", flush=True)
            break
        done.append(run(RECIPES[i][0], **{**DEFAULTS, **RECIPES[i][1]}))
    for r in done:
        b, a = r["best_by_val_loss"], r["best_by_val_acc"]
        print(f"{r['name']:45s} kept by val loss: test {b['test_acc']:.4f} (epoch {b['epoch']}) | "
              f"by val acc: test {a['test_acc']:.4f} (epoch {a['epoch']}) | {r['seconds']} s", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.recipe_sweep", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("--run", type=Path, required=True, help="a training.train output dir (its data/ split)")
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("sweep")
    b.add_argument("--dir", type=Path, required=True)
    b.add_argument("--only", help="comma-separated recipe indices")
    b.add_argument("--budget", type=float, default=float("inf"), help="seconds; no recipe starts that would overrun")
    b.add_argument("--rows", type=int, help="a seeded sample of N rows per split (a quick look)")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.run, args.out)
    else:
        sweep(args.dir, [int(i) for i in args.only.split(",")] if args.only else None, args.budget, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
