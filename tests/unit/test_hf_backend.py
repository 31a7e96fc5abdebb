"""Hugging Face backend with a tiny randomly initialised checkpoint built here (no downloads)."""

from __future__ import annotations

import math

import pytest

from enrichment_ai.analysis.hf import HFBackend, HFSequenceClassifier
from enrichment_ai.config import Settings

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "love", "hate", "this", "you", "are", "great", "awful", "!", ".", "so"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A 2-layer, hidden-32 BERT classifier with 3 labels saved to disk, with its tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    cfg = BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
        id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, label2id={"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model, tok


LABELS = {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}


def test_classifier_maps_labels_and_matches_direct_forward(tiny_checkpoint):
    import torch

    path, model, tok = tiny_checkpoint
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


def test_labels_mapping_to_the_same_name_are_summed(tiny_checkpoint):
    path, *_ = tiny_checkpoint
    clf = HFSequenceClassifier(str(path), {"LABEL_0": "toxic", "LABEL_1": "toxic", "LABEL_2": "non_toxic"}, device="cpu").load()
    (probs,) = clf.predict(["you are awful"])
    assert set(probs) == {"toxic", "non_toxic"}
    assert probs["toxic"] + probs["non_toxic"] == pytest.approx(1.0, abs=1e-5)


def test_backend_from_settings(tiny_checkpoint):
    path, *_ = tiny_checkpoint
    settings = Settings(hf_models={"sentiment": str(path)}, hf_label_maps={"sentiment": LABELS}, device="cpu")
    backend = HFBackend(settings)
    assert backend.version.startswith("hf-") and backend.tasks == ["sentiment"]
    with pytest.raises(RuntimeError):
        backend.predict(["x"])
    out = backend.load().predict(["i love this", "awful"])
    assert [set(o) for o in out] == [{"sentiment"}, {"sentiment"}]
    assert HFBackend(Settings()).version == ""
