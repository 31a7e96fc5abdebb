"""The identity refit (training/identity_refit.py): its sentences are not the bias check's,
its fit moves the offensive head off identity words only as far as the data asks, and the
training recipe records it once."""

from __future__ import annotations

import numpy as np
import pytest

from enrichment_ai.training import bias, bias_languages
from enrichment_ai.training.identity_refit import _EN, _ML, fit_head, neutral_sentences


def test_the_refit_sentences_share_no_template_with_the_bias_check():
    assert not set(_EN) & set(bias._TEMPLATES)
    check = {t for masc, fem in bias_languages._TEMPLATES.values() for t in masc + fem}
    assert not {t for masc, fem in _ML.values() for t in masc + fem} & check
    assert set(_ML) == set(bias_languages.LANGUAGES)
    sentences = {s for s, _ in neutral_sentences(True)}
    every_check_sentence = {s for s, _, _ in bias.identity_sentences()} | {
        s for lang in bias_languages.LANGUAGES for s, _, _ in bias_languages.identity_sentences_in(lang)}
    assert not sentences & every_check_sentence  # the check measures sentences the refit never saw


def test_an_english_only_artifact_gets_english_sentences_only():
    english = neutral_sentences(False)
    assert {lang for _, lang in english} == {"en"}
    assert len(english) == len(_EN) * sum(len(t) for t in bias.IDENTITIES.values())
    multi = neutral_sentences(True)
    assert {lang for _, lang in multi} == {"en", "de", "pt", "es", "fr", "it"}
    assert ("Mein Sohn hat mir gesagt, dass er schwul ist.", "de") in multi
    assert all("{" not in s for s, _ in multi)


def _data(rng, n=600):
    """Feature 0 an identity word, seen mostly in abuse; feature 1 abuse itself."""
    identity = rng.random(n) < 0.3
    abuse = rng.random(n) < np.where(identity, 0.8, 0.2)
    x = np.stack([identity, abuse, rng.normal(size=n)], 1).astype(float) + rng.normal(scale=0.1, size=(n, 3))
    return x, abuse.astype(int)


def test_neutral_identity_rows_take_the_weight_off_the_identity_feature():
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    w_plain, c_plain = fit_head(x, y, np.ones(len(y)), np.zeros(3), 0.0, lam=0.0)
    assert w_plain[0] > 0.5  # learnt: the identity word predicts abuse
    neutral = np.array([[1.0, 0.0, 0.0]] * 60) + rng.normal(scale=0.1, size=(60, 3))
    xa, ya = np.concatenate([x, neutral]), np.concatenate([y, np.zeros(60, int)])
    w_aug, c_aug = fit_head(xa, ya, np.ones(len(ya)), np.zeros(3), 0.0, lam=0.0)
    assert w_aug[0] < w_plain[0] - 0.5  # the identity word alone no longer reads as abuse
    assert w_aug[1] > 2.0  # abuse still does
    # a neutral identity sentence: over 0 log-odds before, under after
    assert neutral.mean(0) @ w_plain + c_plain > neutral.mean(0) @ w_aug + c_aug


def test_the_pull_keeps_the_trained_head_where_the_data_does_not_ask_otherwise():
    rng = np.random.default_rng(1)
    x, y = _data(rng)
    w0 = np.array([0.5, 3.0, 0.7])  # a "trained head" with weight on the noise feature
    w_free, _ = fit_head(x, y, np.ones(len(y)), w0, 0.0, lam=0.0)
    w_pulled, _ = fit_head(x, y, np.ones(len(y)), w0, 0.0, lam=1.0)
    assert abs(w_free[2]) < 0.5 * w0[2]  # left alone, the fit drops most of the noise weight
    assert np.linalg.norm(w_pulled - w0) < 0.5 * np.linalg.norm(w_free - w0)
    assert w_pulled[2] > abs(w_free[2])
