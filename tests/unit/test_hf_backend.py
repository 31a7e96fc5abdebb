"""Hugging Face backend with a tiny randomly initialised checkpoint built here (no downloads)."""

from __future__ import annotations

import math

import pytest

from enrichment_ai.analysis.hf import HFBackend, HFSequenceClassifier
from enrichment_ai.config import Settings

LABELS = {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}


def test_classifier_maps_labels_and_matches_direct_forward(tiny_hf_checkpoint):
    import torch

    path, model, tok = tiny_hf_checkpoint
    clf = HFSequenceClassifier(str(path), LABELS, device="cpu", batch_size=2).load()
    texts = ["i love this so so so much !", "you are awful", "", "great", "\ud800 broken 😂"]
    out = clf.predict(texts)
    assert len(out) == len(texts)
    for probs in out:
        assert set(probs) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-5)
    # Same numbers as running the saved model directly, in the input order (batches were
    # length-sorted inside, so this also checks that the order is restored).
    model.eval()
    with torch.no_grad():
        ref = torch.softmax(model(**tok(texts[:2], padding=True, return_tensors="pt")).logits, -1)
    for i in range(2):
        assert out[i]["negative"] == pytest.approx(ref[i, 0].item(), abs=1e-5)
        assert out[i]["positive"] == pytest.approx(ref[i, 2].item(), abs=1e-5)


def test_labels_mapping_to_the_same_name_are_summed(tiny_hf_checkpoint):
    path, *_ = tiny_hf_checkpoint
    clf = HFSequenceClassifier(str(path), {"LABEL_0": "toxic", "LABEL_1": "toxic", "LABEL_2": "non_toxic"}, device="cpu").load()
    (probs,) = clf.predict(["you are awful"])
    assert set(probs) == {"toxic", "non_toxic"}
    assert probs["toxic"] + probs["non_toxic"] == pytest.approx(1.0, abs=1e-5)


def test_backend_from_settings(tiny_hf_checkpoint):
    path, *_ = tiny_hf_checkpoint
    settings = Settings(hf_models={"sentiment": str(path)}, hf_label_maps={"sentiment": LABELS}, device="cpu")
    backend = HFBackend(settings)
    assert backend.version.startswith("hf-") and backend.tasks == ["sentiment"]
    with pytest.raises(RuntimeError):
        backend.predict(["x"])
    out = backend.load().predict(["i love this", "awful"])
    assert [set(o) for o in out] == [{"sentiment"}, {"sentiment"}]
    assert HFBackend(Settings()).version == ""
