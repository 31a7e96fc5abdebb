"""Toxicity calibration (cross-fitted) and the identity-term bias report."""

from __future__ import annotations

import numpy as np
import pytest

from enrichment_ai.training.bias import IDENTITIES, bias_report, identity_sentences
from enrichment_ai.training.calibration import apply_calibration, fit_by_language, fit_toxicity_calibration


def test_calibration_recovers_a_known_model():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 2)) * 2
    p_true = 1 / (1 + np.exp(-(0.8 * z[:, 0] + 0.3 * z[:, 1] - 0.5)))
    y = (rng.random(4000) < p_true).astype(int)
    coef, report = fit_toxicity_calibration(z * 3, y, method="platt")  # mis-scaled log-odds in, calibrated out
    assert len(coef) == 3
    assert coef[0] == pytest.approx(0.8 / 3, abs=0.05)
    assert report["ece"] < 0.03 < report["ece_uncalibrated_max_head"]
    p = apply_calibration(coef, z * 3)
    assert ((p > 0) & (p < 1)).all()


def _s_shaped(n: int, seed: int):
    """Log-odds whose true probability saturates: sigmoid(3 tanh(z_off / 2) + 0.5 tanh(z_hate) - 0.5),
    the over-confident S a Platt line cannot follow (observed above predicted low, below it high)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2)) * 3
    p_true = 1 / (1 + np.exp(-(3 * np.tanh(z[:, 0] / 2) + 0.5 * np.tanh(z[:, 1]) - 0.5)))
    return z, (rng.random(n) < p_true).astype(int)


def test_tanh_calibrator_follows_an_s_shaped_curve_that_platt_cannot():
    z, y = _s_shaped(6000, 1)
    coef_platt, platt = fit_toxicity_calibration(z, y, method="platt")
    coef, tanh = fit_toxicity_calibration(z, y)  # the default
    assert len(coef) == 7 and tanh["method"].startswith("platt+tanh")
    # cross-fitted (held-out folds) on both: the richer form is the better calibrated
    assert tanh["ece"] < 0.025 < platt["ece"]
    assert tanh["brier"] < platt["brier"]
    # and on fresh data from the same process
    z2, y2 = _s_shaped(6000, 2)
    from enrichment_ai.training.metrics import expected_calibration_error
    assert expected_calibration_error(y2, apply_calibration(coef, z2)) < expected_calibration_error(
        y2, apply_calibration(coef_platt, z2))


def test_tanh_calibrator_is_monotone_even_when_the_data_is_not():
    # toxic rate falls as z_hate rises past 2 (a head that is wrong at the top): an unconstrained
    # fit would put a negative weight on a feature; P(toxic) must still never fall as a log-odds rises
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5000, 2)) * 3
    logit = z[:, 0] + np.where(z[:, 1] > 2, -2.0 * (z[:, 1] - 2), 0.3 * z[:, 1])
    y = (rng.random(5000) < 1 / (1 + np.exp(-logit))).astype(int)
    coef, _ = fit_toxicity_calibration(z, y)
    assert (coef[:6] >= 0).all()
    grid = np.linspace(-12, 12, 241)
    for other in (-5.0, 0.0, 5.0):
        for axis in (0, 1):
            zz = np.full((len(grid), 2), other)
            zz[:, axis] = grid
            assert (np.diff(apply_calibration(coef, zz)) >= -1e-7).all()


def test_a_stored_platt_vector_still_applies_as_platt():
    z = np.array([[1.0, -2.0], [0.0, 0.0], [-3.0, 4.0]])
    coef = np.array([0.7, 0.3, -0.2], dtype=np.float32)
    assert np.allclose(apply_calibration(coef, z), 1 / (1 + np.exp(-(z @ coef[:2] + coef[2]))))
    with pytest.raises(ValueError, match="3 or 7"):
        apply_calibration(np.zeros(4), z)


def test_per_language_fits_can_share_one_calibrator():
    za, ya = _s_shaped(3000, 4)
    zb, yb = _s_shaped(3000, 5)
    coef, report, by, reports = fit_by_language({"en": (za, ya), "de": (zb * 0.5, yb)}, method="platt+tanh")
    assert len(coef) == 7 and {len(c) for c in by.values()} == {7}
    assert set(reports) == {"en", "de"} and all(0 <= r["ece"] < 0.05 for r in reports.values())


def _linear(n: int, seed: int):
    """Log-odds whose true probability is a Platt line of them: nothing for tanh terms to add."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2)) * 2
    return z, (rng.random(n) < 1 / (1 + np.exp(-(0.6 * z[:, 0] + 0.2 * z[:, 1] - 0.4)))).astype(int)


def test_each_language_gets_the_calibrator_with_the_lower_cross_fitted_ece():
    za, ya = _s_shaped(3000, 4)
    zb, yb = _linear(3000, 5)
    coef, report, by, reports = fit_by_language({"en": (za, ya), "de": (zb, yb)})  # the default: choose
    for lang, r in [("global", report), *reports.items()]:
        scored = r["chosen_from"]
        assert set(scored) == {"platt", "platt+tanh"}
        chosen = "platt" if scored["platt"] <= scored["platt+tanh"] else "platt+tanh"
        assert r["method"].startswith(chosen + " ")
        assert round(r["ece"], 4) == scored[chosen]
        if lang != "global":
            assert len(by[lang]) == {"platt": 3, "platt+tanh": 7}[chosen]
    # the S-shaped language needs the tanh terms (Platt cannot follow it: the test above)
    assert len(by["en"]) == 7 and reports["en"]["chosen_from"]["platt"] > 0.025


def test_a_calibrator_tie_goes_to_the_one_with_fewer_numbers(monkeypatch):
    from enrichment_ai.training import calibration

    def fake(z, y, *, folds=5, seed=0, method="platt+tanh"):
        return np.zeros(3 if method == "platt" else 7), {"method": f"{method} on ...", "ece": 0.02}

    monkeypatch.setattr(calibration, "fit_toxicity_calibration", fake)
    coef, report = calibration.choose_toxicity_calibration(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    assert len(coef) == 3 and report["chosen_from"] == {"platt": 0.02, "platt+tanh": 0.02}


def _with_sentences(n: int, seed: int):
    """Messages whose label follows the whole message's log-odds, plus 0-3 sentence candidates
    (the whole message's log-odds plus noise): the worker's score is the max over them, which
    a fit on whole messages alone does not know about."""
    rng = np.random.default_rng(seed)
    whole = rng.normal(size=(n, 2)) * 2
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.9 * whole[:, 0] + 0.4 * whole[:, 1] - 0.3)))).astype(int)
    zs = [np.vstack([w, w + rng.normal(size=(k, 2)) * 1.5]) for w, k in zip(whole, rng.integers(0, 4, n))]
    return zs, y


def test_the_fit_calibrates_the_max_over_sentences_the_worker_outputs():
    from enrichment_ai.training.metrics import expected_calibration_error

    zs, y = _with_sentences(5000, 6)
    whole = np.stack([z[0] for z in zs])
    coef_whole, _ = fit_toxicity_calibration(whole, y)
    coef_max, report = fit_toxicity_calibration(zs, y)
    assert "max over each message" in report["method"]
    # apply_calibration on candidates = the max of each message's calibrated rows
    p_rows = [apply_calibration(coef_max, z) for z in zs]
    assert np.allclose(apply_calibration(coef_max, zs), [p.max() for p in p_rows])
    # on fresh messages, the worker's output (the max) is calibrated only by the fit that saw it
    zs2, y2 = _with_sentences(5000, 7)
    ece_whole = expected_calibration_error(y2, apply_calibration(coef_whole, zs2))
    ece_max = expected_calibration_error(y2, apply_calibration(coef_max, zs2))
    assert ece_max < 0.04 and ece_whole > 0.1  # measured: 0.027 and 0.123
    assert report["ece"] < 0.04  # the cross-fitted figure measures the max too


def test_identity_templates_cover_every_identity():
    sents = identity_sentences()
    assert len(sents) >= 100 * 30
    assert {i for _, _, i in sents} == {t for terms in IDENTITIES.values() for t in terms}
    assert all(i in s for s, _, i in sents)


def test_bias_report_counts_false_positives():
    sents = [("I am a gay person", "gender_sexuality", "gay"), ("I am a muslim person", "religion", "muslim"),
             ("my friend is gay", "gender_sexuality", "gay"), ("my friend is muslim", "religion", "muslim")]
    r = bias_report(sents, np.array([0.9, 0.1, 0.2, 0.1]), 0.5)
    assert r["fpr"] == pytest.approx(0.25)
    assert r["fpr_by_identity"] == {"gay": 0.5, "muslim": 0.0}
    assert r["worst_identities"][0] == ("gay", 0.5)
    assert r["examples_flagged"] == ["I am a gay person"]


def test_identity_sentences_beyond_english_state_each_identity_in_every_group():
    from enrichment_ai.training.bias_languages import LANGUAGES, identity_sentences_in, template_count

    assert {"de", "pt", "es", "fr", "it"} <= set(LANGUAGES)
    for lang in LANGUAGES:
        sents = identity_sentences_in(lang)
        assert len(sents) >= 150 and len({s for s, _, _ in sents}) == len(sents)  # no sentence twice
        assert {g for _, g, _ in sents} == set(IDENTITIES)  # every group of the English set
        assert all("{" not in s and s.endswith(".") for s, _, _ in sents)
        # each identity is said of men and of women, or only of the gender its word fits
        per_id = {i: sum(1 for _, _, j in sents if j == i) for _, _, i in sents}
        assert set(per_id.values()) <= {template_count(lang)} | set(range(5, template_count(lang)))
    assert ("Mein Nachbar ist schwul.", "gender_sexuality", "schwul") in identity_sentences_in("de")
    assert not any(s.startswith("Meine") and "schwul" in s for s, _, _ in identity_sentences_in("de"))
    with pytest.raises(ValueError, match="no identity sentences"):
        identity_sentences_in("xx")
