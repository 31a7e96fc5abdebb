"""Toxicity calibration (cross-fitted) and the identity-term bias report."""

from __future__ import annotations

import numpy as np
import pytest

from enrichment_ai.training.bias import IDENTITIES, bias_report, identity_sentences
from enrichment_ai.training.calibration import apply_calibration, fit_toxicity_calibration


def test_calibration_recovers_a_known_model():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 2)) * 2
    p_true = 1 / (1 + np.exp(-(0.8 * z[:, 0] + 0.3 * z[:, 1] - 0.5)))
    y = (rng.random(4000) < p_true).astype(int)
    coef, report = fit_toxicity_calibration(z * 3, y)  # mis-scaled log-odds in, calibrated out
    assert coef[0] == pytest.approx(0.8 / 3, abs=0.05)
    assert report["ece"] < 0.03 < report["ece_uncalibrated_max_head"]
    p = apply_calibration(coef, z * 3)
    assert ((p > 0) & (p < 1)).all()


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
