"""Average the kept weights of several finished training runs into one model (a greedy "model
soup", Wortsman et al. 2022) and export it as one artifact.

    python -m training.soup --run runs/a --run runs/b --run runs/c --output-dir runs/soup

The runs must share their data split (the same --data, --seed and --max-rows; vary
--shuffle-seed or the recipe between them) and their architecture and tokenizer. The runs are
ranked by validation loss; the best one starts the soup and each of the others joins it only where
the mean of the weights lowers the validation loss. The validation split picks the members and
the threshold, as it picks the epoch in training; the test split stays unseen until the export
reports it. Scoring the soup costs what scoring one model costs. The last line of stdout is the
artifact's path.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("training.soup")


@dataclasses.dataclass
class Member:
    dir: Path
    cfg: object  # training.train.TrainConfig
    summary: dict
    weights: list | None = None
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")


def _open_run(path: str):
    from training.train import TrainConfig

    d = Path(path)
    if not (d / "DONE.json").is_file():
        raise ValueError(f"--run {d}: not a finished training run (no DONE.json); let it finish first")
    saved = json.loads((d / "run_config.json").read_text())["config"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: tuple(v) if k in ("data", "holdout") else v for k, v in saved.items() if k in fields})
    summary = json.loads((d / "data" / "summary.json").read_text())
    if not (d / "best" / "weights.index").is_file():
        raise ValueError(f"--run {d}: its kept weights (best/weights) are missing")
    return Member(d, cfg, summary)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def check_compatible(members: list[Member]) -> None:
    """One line naming what differs, before any model is built."""
    first = members[0]
    fingerprints = {s: v["fingerprint"] for s, v in first.summary["splits"].items()}
    for m in members[1:]:
        theirs = {s: v["fingerprint"] for s, v in m.summary["splits"].items()}
        if theirs != fingerprints:
            raise ValueError(f"--run {m.dir} was trained on another split than {first.dir} (fingerprints {theirs} "
                             f"against {fingerprints}); soup runs of the same --data, --seed and --max-rows "
                             "(vary --shuffle-seed)")
        for name in ("pooling", "max_length", "normalization"):
            if getattr(m.cfg, name) != getattr(first.cfg, name):
                raise ValueError(f"--run {m.dir}: --{name.replace('_', '-')} {getattr(m.cfg, name)!r} differs from "
                                 f"{first.dir}'s {getattr(first.cfg, name)!r}")
        if _digest(m.dir / "tokenizer" / "tokenizer.json") != _digest(first.dir / "tokenizer" / "tokenizer.json"):
            raise ValueError(f"--run {m.dir}: its tokenizer differs from {first.dir}'s")


def greedy_soup(members: list[Member], evaluate) -> tuple[list, list[Member], list[dict]]:
    """``evaluate(weights) -> metrics`` (validation). Returns the soup's weights, its members and
    the log of every step (the runs alone, then each candidate mean)."""
    steps = []
    for m in members:
        vm = evaluate(m.weights)
        m.val_loss, m.val_accuracy = vm["log_loss"], vm["accuracy"]
        steps.append({"run": str(m.dir), "step": "alone", "val_loss": m.val_loss, "val_accuracy": m.val_accuracy})
        log.info("%s alone: val_loss %.4f val_acc %.4f", m.dir, m.val_loss, m.val_accuracy)
    ranked = sorted(members, key=lambda m: m.val_loss)
    chosen = [ranked[0]]
    total = [w.astype(np.float64) for w in ranked[0].weights]
    best = ranked[0].val_loss
    soup = ranked[0].weights
    for m in ranked[1:]:
        trial_total = [t + w for t, w in zip(total, m.weights)]
        trial = [(t / (len(chosen) + 1)).astype(w.dtype) for t, w in zip(trial_total, m.weights)]
        vm = evaluate(trial)
        joined = vm["log_loss"] < best
        steps.append({"run": str(m.dir), "step": "join", "val_loss": vm["log_loss"], "val_accuracy": vm["accuracy"],
                      "joined": joined})
        log.info("with %s: val_loss %.4f val_acc %.4f -> %s", m.dir, vm["log_loss"], vm["accuracy"],
                 "joins" if joined else "left out")
        if joined:
            chosen.append(m)
            total, best, soup = trial_total, vm["log_loss"], trial
    return soup, chosen, steps


def soup(run_dirs: list[str], output_dir: str) -> Path:
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import read_split
    from training.export import evaluate_arrays, export_artifact, predict_arrays

    if len(run_dirs) < 2:
        raise ValueError("give at least two --run directories")
    if len(set(Path(r).resolve() for r in run_dirs)) != len(run_dirs):
        raise ValueError("a --run is given twice")
    members = [_open_run(r) for r in run_dirs]
    check_compatible(members)
    out = Path(output_dir)
    if (out / "artifact").exists():
        raise ValueError(f"--output-dir {out} already holds an artifact; artifacts are immutable - choose another")
    first = members[0]
    base_path = M.resolve_base_model(first.cfg.base_model)
    base_cfg = M.check_bert_checkpoint(base_path)
    model = M.build_classifier(M.load_encoder(base_path), first.cfg.pooling, first.cfg.dropout)
    for m in members:
        try:
            model.load_weights(str(m.dir / "best" / "weights")).expect_partial()
        except (ValueError, KeyError) as e:  # another architecture: the shapes do not fit
            raise ValueError(f"--run {m.dir}: its weights do not fit {first.dir}'s model ({e})") from None
        m.weights = [v.numpy() for v in model.weights]

    encoder = TextEncoder(first.dir / "tokenizer" / "tokenizer.json", first.cfg.max_length)
    predict = predict_arrays(model)
    _, val_texts, val_y = read_split(first.dir / "data", "validation")

    def assign(values):
        for v, w in zip(model.weights, values):
            v.assign(w)

    def evaluate(values):
        assign(values)
        return evaluate_arrays(predict, encoder, val_texts, val_y, first.cfg.normalization)

    weights, chosen, steps = greedy_soup(members, evaluate)
    assign(weights)
    log.info("soup of %d of %d runs: %s", len(chosen), len(members), [str(m.dir) for m in chosen])

    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(first.cfg, output_dir=str(out))
    run = argparse.Namespace(cfg=cfg, data_dir=first.dir / "data", artifact_dir=out / "artifact")
    info = {
        "config": dataclasses.asdict(cfg), "base_model_path": base_path, "data": first.summary,
        "kept_weights": "soup",
        "soup": {"method": "greedy by validation log loss", "members": [str(m.dir.resolve()) for m in chosen],
                 "candidates": [{"run": str(m.dir.resolve()), "config": dataclasses.asdict(m.cfg),
                                 "val_loss": m.val_loss, "val_accuracy": m.val_accuracy} for m in members],
                 "steps": steps},
    }
    artifact = export_artifact(run, model, encoder, first.dir / "tokenizer", base_cfg, info)
    (out / "DONE.json").write_text(json.dumps({"artifact": str(artifact)}))
    return artifact


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, dest="runs",
                   help="a finished training run directory; repeat (at least two)")
    p.add_argument("--output-dir", required=True, help="where the soup's artifact is written (DIR/artifact)")
    args = p.parse_args(argv)
    from training.train import artifact_cli

    return artifact_cli(lambda: soup(args.runs, args.output_dir))


if __name__ == "__main__":
    sys.exit(main())
