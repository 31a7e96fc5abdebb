"""Metric functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from enrichment_ai.training import metrics as m


def test_macro_recall_by_hand():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 0, 2]
    # recalls: class0 1/2, class1 2/2, class2 1/2 -> mean 2/3
    assert m.macro_recall(y, p) == pytest.approx(2 / 3)


def test_macro_f1_by_hand():
    y = [0, 0, 0, 1, 1]
    p = [0, 0, 1, 1, 0]
    # class0: tp2 fp1 fn1 -> P=R=2/3 F=2/3; class1: tp1 fp1 fn1 -> F=1/2
    assert m.macro_f1(y, p) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_f1_pos_only_counts_positive_class():
    y = [1, 1, 0, 0]
    p = [1, 0, 1, 0]
    assert m.f1_pos(y, p) == pytest.approx(0.5)
    assert m.f1_pos([0, 0], [0, 0]) == 0.0


def test_official_dispatch():
    y, p = [0, 1, 2, 2], [0, 1, 2, 1]
    assert m.official("sentiment", y, p) == pytest.approx(m.macro_recall(y, p))
    assert m.official("emotion", y, p) == pytest.approx(m.macro_f1(y, p))
    assert m.official("irony", [1, 0], [1, 1]) == pytest.approx(2 / 3)


def test_missing_class_counts_as_zero_with_n_classes():
    assert m.macro_recall([0, 0], [0, 0], n_classes=2) == pytest.approx(0.5)


def test_ece_by_hand():
    # bin 0.1-0.2: p=0.1 x2, outcomes 0,1 -> |0.5-0.1|=0.4, weight .5
    # bin 0.9-1.0: p=0.9 x2, outcomes 1,1 -> |1-0.9|=0.1, weight .5
    y = [0, 1, 1, 1]
    p = [0.1, 0.1, 0.9, 0.9]
    assert m.expected_calibration_error(y, p) == pytest.approx(0.25)
    assert m.expected_calibration_error([1, 0], [1.0, 0.0]) == pytest.approx(0.0)


def test_brier_and_fpr():
    assert m.brier([1, 0], [0.5, 0.5]) == pytest.approx(0.25)
    assert m.false_positive_rate([0, 0, 0, 1], [1, 0, 0, 1]) == pytest.approx(1 / 3)


def test_multilabel_f1_by_hand():
    y = np.array([[1, 0, 0], [1, 1, 0]])
    p = np.array([[1, 1, 0], [0, 1, 0]])
    # label0: tp1 fn1 -> F=2/3; label1: tp1 fp1 -> F=2/3; label2 absent -> excluded
    # micro: tp2 fp1 fn1 -> 4/6
    out = m.multilabel_f1(y, p)
    assert out["micro_f1"] == pytest.approx(2 / 3)
    assert out["macro_f1"] == pytest.approx(2 / 3)
