"""Several finished training runs of one split, combined two ways: their weights averaged (a greedy
"model soup", Wortsman et al. 2022: ranked by validation loss, each run joins the mean only where
it lowers it; and the uniform mean of all) and their predictions averaged (an ensemble, which costs
one model's scoring per member). Every combination is scored on the runs' validation and test
splits, the threshold tuned on validation as the export does.

    python -m bench.soup --run runs/s140-s1 --run runs/s140-s2 --run runs/s140-from-semeval

Runs share their split when they differ only in ``training.train --shuffle-seed`` (or in recipe
flags, not in --data, --seed or --max-rows). Prints one JSON line per candidate.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Member:
    dir: Path
    cfg: dict  # the run's training config (run_config.json)
    summary: dict  # its data summary (data/summary.json)
    weights: list | None = None
    val_loss: float = float("nan")


def open_run(path: str) -> Member:
    d = Path(path)
    if not (d / "DONE.json").is_file():
        raise ValueError(f"--run {d}: not a finished training run (no DONE.json)")
    return Member(d, json.loads((d / "run_config.json").read_text())["config"],
                  json.loads((d / "data" / "summary.json").read_text()))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def check_compatible(members: list[Member]) -> None:
    """One line naming what differs between the first run and another."""
    first = members[0]
    fingerprints = {s: v["fingerprint"] for s, v in first.summary["splits"].items()}
    for m in members[1:]:
        theirs = {s: v["fingerprint"] for s, v in m.summary["splits"].items()}
        if theirs != fingerprints:
            raise ValueError(f"--run {m.dir} was trained on another split than {first.dir}; combine runs of the "
                             "same --data, --seed and --max-rows (vary --shuffle-seed)")
        for name in ("pooling", "max_length", "normalization"):
            if m.cfg[name] != first.cfg[name]:
                raise ValueError(f"--run {m.dir}: {name} {m.cfg[name]!r} differs from {first.dir}'s {first.cfg[name]!r}")
        if _digest(m.dir / "tokenizer" / "tokenizer.json") != _digest(first.dir / "tokenizer" / "tokenizer.json"):
            raise ValueError(f"--run {m.dir}: its tokenizer differs from {first.dir}'s")


def greedy_soup(members: list[Member], val_loss) -> tuple[list, list[Member], list[dict]]:
    """Members with their own ``val_loss`` set; ``val_loss(weights) -> float`` scores a mean. The
    soup's weights, its members, and a log of each candidate mean."""
    ranked = sorted(members, key=lambda m: m.val_loss)
    chosen, soup, best = [ranked[0]], ranked[0].weights, ranked[0].val_loss
    total = [w.astype(np.float64) for w in soup]
    steps = []
    for m in ranked[1:]:
        trial_total = [t + w for t, w in zip(total, m.weights)]
        trial = [(t / (len(chosen) + 1)).astype(w.dtype) for t, w in zip(trial_total, m.weights)]
        loss = val_loss(trial)
        steps.append({"run": str(m.dir), "val_loss": loss, "joined": loss < best})
        if loss < best:
            chosen.append(m)
            total, best, soup = trial_total, loss, trial
    return soup, chosen, steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, dest="runs", help="a finished run; repeat (2 or more)")
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        p.error("give at least two --run directories")

    from sentiment_core.metrics import best_threshold, binary_metrics
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import read_split
    from training.export import predict_arrays, probabilities

    members = [open_run(r) for r in args.runs]
    check_compatible(members)
    first = members[0]
    model = M.build_classifier(M.load_encoder(M.resolve_base_model(first.cfg["base_model"])),
                               first.cfg["pooling"], first.cfg["dropout"])
    for m in members:
        model.load_weights(str(m.dir / "best" / "weights")).expect_partial()
        m.weights = [v.numpy() for v in model.weights]
    encoder = TextEncoder(first.dir / "tokenizer" / "tokenizer.json", first.cfg["max_length"])
    predict = predict_arrays(model)
    split = {s: read_split(first.dir / "data", s) for s in ("validation", "test")}

    def probs(weights, splits=("validation", "test")) -> dict:
        for v, w in zip(model.weights, weights):
            v.assign(w)
        return {s: probabilities(predict, encoder, split[s][1], first.cfg["normalization"]) for s in splits}

    def report(kind: str, names: list[str], p: dict) -> float:
        (_, _, vy), (_, _, ty) = split["validation"], split["test"]
        th = best_threshold(vy, p["validation"])
        val, test = binary_metrics(vy, p["validation"], th), binary_metrics(ty, p["test"], th)
        print(json.dumps({"kind": kind, "runs": names, "threshold": th, "val_loss": round(val["log_loss"], 4),
                          "val_accuracy": round(val["accuracy"], 4), "test_accuracy": round(test["accuracy"], 4),
                          "test_log_loss": round(test["log_loss"], 4), "test_roc_auc": round(test["roc_auc"], 4)}),
              flush=True)
        return val["log_loss"]

    alone = {m.dir.name: probs(m.weights) for m in members}
    vy = split["validation"][2]
    for m in members:
        m.val_loss = binary_metrics(vy, alone[m.dir.name]["validation"])["log_loss"]

    def val_loss(weights) -> float:
        return binary_metrics(vy, probs(weights, ("validation",))["validation"])["log_loss"]

    soup, chosen, steps = greedy_soup(members, val_loss)
    for s in steps:
        print(json.dumps({"kind": "greedy soup: mean with", **s}), flush=True)
    report("greedy soup", [m.dir.name for m in chosen], probs(soup))
    uniform = [np.mean([m.weights[i] for m in members], axis=0).astype(w.dtype) for i, w in enumerate(first.weights)]
    report("uniform soup", [m.dir.name for m in members], probs(uniform))
    for k in range(1, len(members) + 1):
        for combo in itertools.combinations(members, k):
            names = [m.dir.name for m in combo]
            report("one run" if k == 1 else "ensemble", names,
                   {s: np.mean([alone[n][s] for n in names], axis=0) for s in split})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
