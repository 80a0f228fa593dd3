"""Run logs you can look at: CSV per step and per epoch, TensorBoard events, PNG plots."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)

STEP_FIELDS = ["global_step", "epoch", "step", "loss", "accuracy", "learning_rate", "examples_per_sec",
               "val_loss", "val_accuracy"]
EPOCH_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_roc_auc", "seconds",
                "examples_per_sec", "best", "val_loss_ema", "val_accuracy_ema", "kept", "val_loss_average",
                "val_accuracy_average"]


class CsvLog:
    """Append-only CSV whose rows past a restored checkpoint can be cut (on resume)."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = Path(path), fields
        if not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, key: str, upto: int) -> None:
        """Keep only rows with int(row[key]) <= upto (work after the checkpoint is redone)."""
        keep = [r for r in self.rows() if int(r[key]) <= upto]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(keep)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow({k: _fmt(row.get(k)) for k in self.fields})


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def plot(run_dir: Path) -> list[Path]:
    """Write loss/accuracy plots per epoch and per step (train and validation) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = []
    steps = CsvLog(run_dir / "logs" / "steps.csv", STEP_FIELDS).rows()
    epochs = CsvLog(run_dir / "logs" / "epochs.csv", EPOCH_FIELDS).rows()

    def num(rows, k):
        return [(float(r["global_step" if "global_step" in r else "epoch"]), float(r[k])) for r in rows if r.get(k)]

    for name, rows, xlabel in (("per_step", steps, "step"), ("per_epoch", epochs, "epoch")):
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for key, style, label in ((metric, "-", "train"), (f"val_{metric}", "o-", "validation"),
                                      (f"val_{metric}_ema", "s--", "validation, averaged weights")):
                pts = num(rows, key)
                if pts:
                    ax.plot(*zip(*pts), style, label=label)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(f"loss and accuracy {name.replace('_', ' ')}")
        fig.tight_layout()
        path = run_dir / "plots" / f"loss_accuracy_{name}.png"
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out.append(path)
    return out
