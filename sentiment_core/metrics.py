"""Binary classification metrics from probabilities, in numpy (no scikit-learn needed)."""
from __future__ import annotations

import numpy as np


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); None with one class."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    sorted_p = np.asarray(p)[order]
    ranks = np.empty(len(p), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE of the positive-class probability over equal-width bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """accuracy, precision, recall, f1, roc_auc, log_loss, brier, ece and the confusion matrix
    for labels y in {0, 1} and positive-class probabilities p, at ``threshold``."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p):
        raise ValueError(f"labels and probabilities differ in length: {len(y)} != {len(p)}")
    if len(y) == 0:
        raise ValueError("no examples to evaluate")
    pred = (p >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {
        "n": int(len(y)),
        "accuracy": (tp + tn) / len(y),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y, p),
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
        "threshold": float(threshold),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "positive_rate": float(y.mean()),
    }


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold that maximises accuracy on (y, p), searched over a 0.01 grid (0.05-0.95)."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    y = np.asarray(y)
    accs = [((np.asarray(p) >= t) == (y == 1)).mean() for t in grid]
    return float(grid[int(np.argmax(accs))])
