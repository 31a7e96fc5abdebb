"""Toxicity calibration: P(toxic) from the offensive and hate heads' log-odds.

``z_off``/``z_hate`` are the two heads' log-odds; "toxic" = offensive as the offensive sets
label it (:data:`TOXICITY_TASKS`: TweetEval/OLID in English, GermEval 2018 and ToLD-Br
beyond): insults, threats, abuse, hate and profanity. Two calibrators, both stored as one
coefficient vector (``Heads.toxicity_calibration``):

- ``platt`` (3 numbers, every artifact fitted before the tanh calibrator): sigmoid(a*z_off + b*z_hate + c);
- ``platt+tanh`` (7 numbers, what :func:`fit_toxicity_calibration` fits now):
  sigmoid(w . [z_off, z_hate, tanh(z_off/2), tanh(z_hate/2), tanh(z_off), tanh(z_hate)] + c)
  with every w >= 0. A Platt line cannot follow a reliability curve shaped like an S
  (observed above predicted at low scores, below it at the alert band); the saturating
  tanh terms can, and non-negative weights on features that all increase with each
  log-odds keep P(toxic) monotone in both heads (a message cannot score lower for being
  more offensive). sklearn's LogisticRegression has no sign constraints, so the fit is
  the same L2-penalised logistic loss minimised with scipy's bounded L-BFGS-B.

What is fitted is what the worker outputs: a message's toxicity is the maximum over the
whole message and each of its sentences (``SharedEncoderAnalyzer``), and since the
calibrated probability is increasing in the calibrator's logit, that is
sigmoid(max_j g(z_j)) over the message's candidates. A fit on whole messages alone left
the shipped probability over-confident (English in-sample ECE 0.034 with 0.025
cross-fitted on whole messages), so every fit takes, per message, either one row of
log-odds or all of its candidates (row 0 the whole message) and minimises the log loss of
that maximum (a piecewise-smooth objective; L-BFGS-B follows its subgradient).

The reliability we report is honest: :func:`fit_toxicity_calibration` cross-fits (k
folds: fit on k-1, predict the held-out fold) and computes ECE on those out-of-fold
probabilities only; the shipped coefficients are then fitted on all of it.
"""

from __future__ import annotations

import numpy as np

from enrichment_ai.training.metrics import brier, expected_calibration_error


#: the TweetEval sets whose label the calibrated toxicity is the probability of. Not the hate
#: set: until 2026-12-07 it was pooled in ("toxic = offensive or hateful"), but its label is
#: hate against immigrants and women, so its negatives are full of profane personal insults
#: labelled 0. The pooled fit let the offensive log-odds in almost only through a saturating
#: tanh(z_off/2) (weight 0.87; 0.06 on z_off, 0.35 on z_hate), so no offensive evidence could
#: lift a message the hate head calls unhateful much past 0.55: per source it was
#: under-confident on OLID by ~10 points from 0.4 to 0.7 and over-confident on HatEval by as
#: much, its recall at the 0.8 alert threshold was 3 % of OLID's offensive tweets, and
#: "go kill yourself loser" scored 0.61 where a German insult (GermEval-calibrated) scores
#: 0.93 (docs/models.md, "Toxicity: one definition"). The hate head stays an input of the
#: calibrator and a score of its own.
TOXICITY_TASKS: tuple[str, ...] = ("offensive",)
#: coefficient count -> calibrator name (the vector's length says which one an artifact holds)
METHODS = {3: "platt", 7: "platt+tanh"}
DEFAULT_METHOD = "platt+tanh"
#: ``fit_by_language``'s default: each language's calibrator chosen from :data:`CHOICES`
CHOOSE = "choose"
#: what :func:`choose_toxicity_calibration` picks from, fewest numbers first (a tie goes to it)
CHOICES = ("platt", "platt+tanh")
#: fewest rows of each class a language needs for its own (cross-fitted) calibrator
MIN_PER_CLASS = 20
#: sklearn's default-style inverse regularisation (the Platt fits used C=100)
_C = 100.0


def features(z: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """The calibrator's inputs for (n, 2) log-odds [z_off, z_hate]."""
    if method == "platt":
        return z
    return np.concatenate([z, np.tanh(z / 2), np.tanh(z)], 1)


def method_of(coef) -> str:
    """Which calibrator a stored coefficient vector is."""
    n = len(coef)
    if n not in METHODS:
        raise ValueError(f"a toxicity calibration has 3 or 7 numbers, not {n}")
    return METHODS[n]


Candidates = "np.ndarray | list[np.ndarray]"


def _rows(z) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts): every candidate's log-odds and where each message's rows begin.
    ``z`` is (n, 2) (one candidate per message) or a list of (k_i, 2) arrays."""
    if isinstance(z, np.ndarray) and z.ndim == 2:
        return z, np.arange(len(z))
    counts = np.array([len(a) for a in z])
    if (counts < 1).any():
        raise ValueError("every message needs at least its whole-message log-odds")
    return np.concatenate(list(z)).reshape(-1, 2), np.concatenate([[0], np.cumsum(counts)[:-1]])


def _whole(z) -> np.ndarray:
    """The whole-message rows, (n, 2)."""
    return z if isinstance(z, np.ndarray) and z.ndim == 2 else np.stack([a[0] for a in z])


def _subset(z, idx: np.ndarray):
    return z[idx] if isinstance(z, np.ndarray) and z.ndim == 2 else [z[i] for i in idx]


def _fit(z: Candidates, y: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    rows, starts = _rows(z)
    single = len(rows) == len(starts)
    if method == "platt" and single:  # the original fit, unchanged
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(C=_C, max_iter=1000).fit(rows, y)
        return np.array([m.coef_[0][0], m.coef_[0][1], m.intercept_[0]], dtype=np.float32)
    from scipy.optimize import minimize

    x = features(rows, method).astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    k = x.shape[1]
    owner = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))

    def loss(theta):
        w, c = theta[:k], theta[k]
        g = x @ w + c
        if single:
            t, xt = g, x
        else:  # the message's logit is its best candidate's; the gradient flows through that row
            t = np.maximum.reduceat(g, starts)
            top = np.flatnonzero(g == t[owner])
            first = top[np.unique(owner[top], return_index=True)[1]]
            xt = x[first]
        # sum of log(1 + e^t) - y t, and its gradient; the penalty skips the intercept as sklearn's does
        val = np.logaddexp(0, t).sum() - y @ t + (w @ w) / (2 * _C)
        r = 1 / (1 + np.exp(-t)) - y
        return val, np.concatenate([xt.T @ r + w / _C, [r.sum()]])

    start = np.concatenate([np.full(k, 0.1), [0.0]])
    bounds = [(0, None) if method != "platt" else (None, None)] * k + [(None, None)]
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    return res.x.astype(np.float32)


def apply_calibration(coef: np.ndarray, z: Candidates) -> np.ndarray:
    """P(toxic) under a stored coefficient vector (3 numbers: Platt, 7: Platt + tanh;
    :func:`method_of`) for (n, 2) log-odds [z_off, z_hate], or for a list of per-message
    candidates (the maximum over each message's rows, as the worker scores it)."""
    coef = np.asarray(coef)
    rows, starts = _rows(z)
    p = 1 / (1 + np.exp(-(features(rows, method_of(coef)) @ coef[:-1] + coef[-1])))
    return p if len(rows) == len(starts) else np.maximum.reduceat(p, starts)


def fit_toxicity_calibration(z: Candidates, y: np.ndarray, *, folds: int = 5, seed: int = 0,
                             method: str = DEFAULT_METHOD) -> tuple[np.ndarray, dict]:
    """Return (coefficients, report with cross-fitted ECE/Brier and raw ECE). ``z``: (n, 2)
    whole-message log-odds, or per message a (k, 2) array of its candidates (module doc)."""
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    whole = _whole(z)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(whole, y):
        oof[te] = apply_calibration(_fit(_subset(z, tr), y[tr], method), _subset(z, te))
    raw = 1 / (1 + np.exp(-np.maximum(whole[:, 0], whole[:, 1])))  # uncalibrated: max of the two heads
    coef = _fit(z, y, method)
    report = {
        "method": f"{method} on [z_offensive, z_hate], {folds}-fold cross-fitted on val (offensive)"
                  + ("" if len(_rows(z)[0]) == len(y) else "; fitted on the max over each message and its sentences"),
        "n": int(len(y)),
        "ece": expected_calibration_error(y, oof),
        "brier": brier(y, oof),
        "ece_uncalibrated_max_head": expected_calibration_error(y, raw),
        "coefficients": [float(c) for c in coef],
        "reliability": reliability_table(y, oof),
        "thresholds": precision_at_thresholds(y, oof),
    }
    return coef, report


def choose_toxicity_calibration(z: Candidates, y: np.ndarray, *, folds: int = 5, seed: int = 0,
                                methods: "tuple[str, ...]" = CHOICES) -> tuple[np.ndarray, dict]:
    """Fit each calibrator of ``methods`` and keep the one whose cross-fitted ECE (same folds
    for all) is lowest; a tie keeps the earlier one (fewer numbers). The report says what each
    scored (``chosen_from``).

    Why per language: no one form is best everywhere. Measured held out on the worker's max
    (docs/models.md, 2026-12-07): the tanh terms help English (shipped artifact 0.0367 ->
    0.0322), while Platt was the better calibrator for German (0.0213 vs 0.0269) and
    Portuguese (0.0236 vs 0.0241). Choosing the lower of two cross-fitted figures makes the
    chosen one's figure slightly optimistic (a minimum of two noisy estimates); with two
    candidates that bias is small next to the ECE's own noise, and the eval refits the chosen
    form on other folds."""
    best: tuple[np.ndarray, dict] | None = None
    scored = {}
    for method in methods:
        coef, report = fit_toxicity_calibration(z, y, folds=folds, seed=seed, method=method)
        scored[method] = round(float(report["ece"]), 4)
        if best is None or report["ece"] < best[1]["ece"]:
            best = (coef, report)
    assert best is not None, "no calibrator to choose from"
    best[1]["chosen_from"] = scored
    return best


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


def _concat(parts: list):
    if all(isinstance(p, np.ndarray) and p.ndim == 2 for p in parts):
        return np.concatenate(parts)
    return [a for p in parts for a in (p if isinstance(p, list) else list(p[:, None, :]))]


def enough_to_cross_fit(y: np.ndarray) -> bool:
    """At least :data:`MIN_PER_CLASS` toxic and non-toxic rows: enough to fit a calibrator and
    to cross-fit it (fewer leave a fold without one class)."""
    return min(np.bincount(np.asarray(y).astype(int), minlength=2)) >= MIN_PER_CLASS


def fit_by_language(z_by_lang: "dict[str, tuple[Candidates, np.ndarray]]", *, seed: int = 0,
                    method: str = CHOOSE) -> tuple[np.ndarray, dict, dict[str, np.ndarray], dict[str, dict]]:
    """The global calibration on every language's val rows plus one per language.

    Returns (global coefficients, global report, {lang: coefficients}, {lang: report}); each
    report's ECE is cross-fitted on that language's rows. One Platt fit over all languages
    leaves each miscalibrated (measured: English ECE 0.060 in-sample under a fit on
    en+de+pt), so where a language has its own val set it gets its own coefficients.
    ``method``: one calibrator for all, or :data:`CHOOSE` (the default): each fit (the global
    one and every language's) takes the form with the lowest cross-fitted ECE on its own rows
    (:func:`choose_toxicity_calibration`); the stored vector's length says which it is."""

    def fit(zz, yy):
        if method == CHOOSE:
            return choose_toxicity_calibration(zz, yy, seed=seed)
        return fit_toxicity_calibration(zz, yy, seed=seed, method=method)

    z = _concat([v[0] for v in z_by_lang.values()])
    y = np.concatenate([v[1] for v in z_by_lang.values()])
    coef, report = fit(z, y)
    by, reports = {}, {}
    for lang, (zl, yl) in z_by_lang.items():
        if not enough_to_cross_fit(yl):
            continue
        by[lang], reports[lang] = fit(zl, yl)
        # what the global fit gives this language, for comparison
        reports[lang]["ece_global_fit_in_sample"] = expected_calibration_error(yl, apply_calibration(coef, zl))
        reports[lang].pop("reliability", None)
    return coef, report, by, reports
