"""Heads artifact: save/load round trip and version identity."""

from __future__ import annotations

import torch

from enrichment_ai.analysis.heads import TASK_LABELS, Head, Heads, artifact_digest


def _heads(seed: int, adapter: bool) -> Heads:
    g = torch.Generator().manual_seed(seed)
    heads = {t: Head(labs, torch.randn(len(labs), 8, generator=g), torch.randn(len(labs), generator=g))
             for t, labs in TASK_LABELS.items()}
    return Heads(
        heads=heads, toxicity_calibration=torch.tensor([0.7, 0.3, -0.2]),
        topic_labels=["music", "sports"], topic_weight=torch.randn(2, 8, generator=g),
        topic_bias=torch.zeros(2), topic_threshold=torch.full((2,), 0.5),
        adapter_config={"rank": 2, "alpha": 4.0, "targets": ["query"], "layers": [5]} if adapter else None,
        adapter={"encoder.layer.5.attention.self.query.lora_a": torch.randn(2, 8, generator=g)} if adapter else None,
    )


def test_round_trip(tmp_path):
    h = _heads(0, adapter=True)
    h.save(tmp_path)
    back = Heads.load(tmp_path)
    x = torch.randn(4, 8)
    for task in TASK_LABELS:
        assert back.heads[task].labels == TASK_LABELS[task]
        assert torch.allclose(back.heads[task].probs(x), h.heads[task].probs(x))
    assert torch.allclose(back.toxicity(x), h.toxicity(x))
    assert torch.allclose(back.topic_probs(x), h.topic_probs(x))
    assert back.topic_labels == ["music", "sports"]
    assert back.adapter_config == h.adapter_config
    assert set(back.adapter) == set(h.adapter)
    assert back.text_preprocessing == "none"


def test_text_preprocessing_is_part_of_the_weights_file(tmp_path):
    h = _heads(0, adapter=False)
    h.save(tmp_path)
    before = artifact_digest(tmp_path)
    h.text_preprocessing = "symbol-names-v1"
    h.save(tmp_path)
    assert Heads.load(tmp_path).text_preprocessing == "symbol-names-v1"
    assert artifact_digest(tmp_path) != before  # a different tokenization is a different model version


def test_toxicity_is_a_probability():
    h = _heads(1, adapter=False)
    p = h.toxicity(torch.randn(50, 8) * 10)
    assert ((p >= 0) & (p <= 1)).all()


def test_digest_tracks_weights_not_card(tmp_path):
    _heads(0, adapter=False).save(tmp_path)
    d0 = artifact_digest(tmp_path)
    (tmp_path / "card.json").write_text("{}")
    assert artifact_digest(tmp_path) == d0
    _heads(2, adapter=False).save(tmp_path)
    assert artifact_digest(tmp_path) != d0
    assert not (tmp_path / "adapter.safetensors").exists()
