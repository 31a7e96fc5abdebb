"""Toxicity calibration: P(toxic) = sigmoid(a*z_off + b*z_hate + c).

``z_off``/``z_hate`` are the offensive and hate heads' log-odds. The three numbers are
fitted (Platt-style logistic regression) on the validation tweets of both tasks, where
"toxic" = offensive (offensive set) or hateful (hate set). The reliability we report
is honest: :func:`fit_toxicity_calibration` cross-fits (k folds: fit on k-1, predict the
held-out fold) and computes ECE on those out-of-fold probabilities only; the shipped
coefficients are then fitted on all of it.
"""

from __future__ import annotations

import numpy as np

from enrichment_ai.training.metrics import brier, expected_calibration_error


def _fit(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=100.0, max_iter=1000).fit(z, y)
    return np.array([m.coef_[0][0], m.coef_[0][1], m.intercept_[0]], dtype=np.float32)


def apply_calibration(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    """P(toxic) for (n, 2) log-odds [z_off, z_hate]."""
    return 1 / (1 + np.exp(-(z @ coef[:2] + coef[2])))


def fit_toxicity_calibration(z: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Return (coefficients [a, b, c], report with cross-fitted ECE/Brier and raw ECE)."""
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y):
        oof[te] = apply_calibration(_fit(z[tr], y[tr]), z[te])
    raw = 1 / (1 + np.exp(-np.maximum(z[:, 0], z[:, 1])))  # uncalibrated: max of the two heads
    coef = _fit(z, y)
    report = {
        "method": f"Platt on [z_offensive, z_hate], {folds}-fold cross-fitted on val (offensive+hate)",
        "n": int(len(y)),
        "ece": expected_calibration_error(y, oof),
        "brier": brier(y, oof),
        "ece_uncalibrated_max_head": expected_calibration_error(y, raw),
        "coefficients": [float(c) for c in coef],
        "reliability": reliability_table(y, oof),
        "thresholds": precision_at_thresholds(y, oof),
    }
    return coef, report


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Per-bin count, mean predicted probability and observed toxic rate."""
    bins = np.minimum((np.asarray(p) * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = bins == b
        if m.any():
            rows.append({"bin": f"{b / n_bins:.1f}-{(b + 1) / n_bins:.1f}", "n": int(m.sum()),
                         "mean_p": round(float(p[m].mean()), 4), "observed": round(float(y[m].mean()), 4)})
    return rows


def precision_at_thresholds(y: np.ndarray, p: np.ndarray, thresholds=(0.5, 0.7, 0.8, 0.9)) -> list[dict]:
    """Precision/recall/flag-rate when alerting at each threshold (moderator guidance)."""
    rows = []
    for t in thresholds:
        flag = p >= t
        tp = int((flag & (y == 1)).sum())
        rows.append({"threshold": t, "flagged": round(float(flag.mean()), 4),
                     "precision": round(tp / flag.sum(), 4) if flag.any() else None,
                     "recall": round(tp / max(int((y == 1).sum()), 1), 4)})
    return rows


def fit_by_language(z_by_lang: dict[str, tuple[np.ndarray, np.ndarray]], *, seed: int = 0) -> tuple[np.ndarray, dict, dict[str, np.ndarray], dict[str, dict]]:
    """The global calibration on every language's val rows plus one per language.

    Returns (global coefficients, global report, {lang: coefficients}, {lang: report}); each
    report's ECE is cross-fitted on that language's rows. One Platt fit over all languages
    leaves each miscalibrated (measured: English ECE 0.060 in-sample under a fit on
    en+de+pt), so where a language has its own val set it gets its own 3 numbers."""
    z = np.concatenate([v[0] for v in z_by_lang.values()])
    y = np.concatenate([v[1] for v in z_by_lang.values()])
    coef, report = fit_toxicity_calibration(z, y, seed=seed)
    by, reports = {}, {}
    for lang, (zl, yl) in z_by_lang.items():
        if min(np.bincount(yl.astype(int), minlength=2)) < 20:  # too few to fit (and cross-fit) 3 numbers
            continue
        by[lang], reports[lang] = fit_toxicity_calibration(zl, yl, seed=seed)
        # what the global fit gives this language, for comparison
        reports[lang]["ece_global_fit_in_sample"] = expected_calibration_error(yl, apply_calibration(coef, zl))
        reports[lang].pop("reliability", None)
    return coef, report, by, reports
