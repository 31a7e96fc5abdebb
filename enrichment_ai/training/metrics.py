"""Evaluation metrics (pure numpy): TweetEval's official metrics, calibration, multi-label F1.

TweetEval official metrics: sentiment = macro-averaged recall; offensive, hate,
emotion = macro-F1; irony = F1 of the ``irony`` class (label 1).
"""

from __future__ import annotations

import numpy as np

#: task -> official metric name (as the leaderboard states it).
OFFICIAL_METRIC: dict[str, str] = {
    "sentiment": "macro_recall",
    "offensive": "macro_f1",
    "hate": "macro_f1",
    "emotion": "macro_f1",
    "irony": "f1_pos",
}


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (0 where undefined)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    p, r, f = np.zeros(n_classes), np.zeros(n_classes), np.zeros(n_classes)
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        p[c] = tp / (tp + fp) if tp + fp else 0.0
        r[c] = tp / (tp + fn) if tp + fn else 0.0
        f[c] = 2 * p[c] * r[c] / (p[c] + r[c]) if p[c] + r[c] else 0.0
    return p, r, f


def _classes(y_true, y_pred, n_classes: int | None) -> int:
    return n_classes or int(max(np.max(y_true, initial=0), np.max(y_pred, initial=0)) + 1)


def accuracy(y_true, y_pred) -> float:
    """Fraction correct."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def macro_recall(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class recall (TweetEval sentiment)."""
    return float(np.mean(_per_class(y_true, y_pred, _classes(y_true, y_pred, n_classes))[1]))


def macro_f1(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1."""
    return float(np.mean(_per_class(y_true, y_pred, _classes(y_true, y_pred, n_classes))[2]))


def f1_pos(y_true, y_pred, positive: int = 1) -> float:
    """F1 of one class (TweetEval irony: the ``irony`` class)."""
    y_true, y_pred = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    tp = np.sum(y_true & y_pred)
    denom = 2 * tp + np.sum(~y_true & y_pred) + np.sum(y_true & ~y_pred)
    return float(2 * tp / denom) if denom else 0.0


def average_f(y_true, y_pred, n_classes: int | None = None) -> float:
    """GermEval 2018's "Average F": harmonic mean of macro precision and macro recall."""
    p, r, _ = _per_class(y_true, y_pred, _classes(y_true, y_pred, n_classes))
    p, r = float(p.mean()), float(r.mean())
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def metric(name: str, y_true, y_pred, n_classes: int | None = None) -> float:
    """A metric by name: macro_recall, macro_f1, f1_pos (class 1) or average_f."""
    if name == "macro_recall":
        return macro_recall(y_true, y_pred, n_classes)
    if name == "macro_f1":
        return macro_f1(y_true, y_pred, n_classes)
    if name == "average_f":
        return average_f(y_true, y_pred, n_classes)
    if name == "f1_pos":
        return f1_pos(y_true, y_pred)
    raise ValueError(f"unknown metric {name!r}")


def official(task: str, y_true, y_pred, n_classes: int | None = None) -> float:
    """The task's official TweetEval metric."""
    name = OFFICIAL_METRIC[task]
    if name == "macro_recall":
        return macro_recall(y_true, y_pred, n_classes)
    if name == "macro_f1":
        return macro_f1(y_true, y_pred, n_classes)
    return f1_pos(y_true, y_pred)


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> float:
    """ECE of binary probabilities: sum over equal-width bins of |acc - conf| * weight."""
    y_true, prob = np.asarray(y_true, dtype=float), np.asarray(prob, dtype=float)
    if not len(prob):
        return 0.0
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(y_true[m].mean() - prob[m].mean())
    return float(ece)


def brier(y_true, prob) -> float:
    """Mean squared error of binary probabilities."""
    y_true, prob = np.asarray(y_true, dtype=float), np.asarray(prob, dtype=float)
    return float(np.mean((prob - y_true) ** 2)) if len(prob) else 0.0


def multilabel_f1(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro and macro F1 for (n, labels) 0/1 matrices (macro over labels present in either)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(0)
    fp = (~y_true & y_pred).sum(0)
    fn = (y_true & ~y_pred).sum(0)
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = 2 * tp.sum() / denom if denom else 0.0
    per = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    macro = float(np.nanmean(per)) if np.any(~np.isnan(per)) else 0.0
    return {"micro_f1": float(micro), "macro_f1": macro}


def false_positive_rate(y_true, y_pred) -> float:
    """FP / (FP + TN) over binary labels."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    neg = ~y_true
    return float((y_pred & neg).sum() / neg.sum()) if neg.any() else 0.0
