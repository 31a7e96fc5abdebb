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


def test_toxicity_matches_the_fitted_calibrator_for_3_and_7_numbers(tmp_path):
    """Heads.toxicity (torch, what the worker runs) is calibration.apply_calibration (numpy,
    what the fit and its ECE use) for an old 3-number artifact and a 7-number one, globally and per
    language, and both survive a save/load round trip."""
    import numpy as np

    from enrichment_ai.training.calibration import apply_calibration

    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    for glob, de in ((torch.tensor([0.7, 0.3, -0.2]), torch.tensor([0.5, 0.1, 0.3])),
                     (torch.tensor([0.2, 0.1, 1.5, 0.4, 0.3, 0.2, -0.4]), torch.tensor([0.1, 0.0, 2.0, 0.0, 0.5, 0.1, 0.2]))):
        h = _heads(0, adapter=False)
        h.toxicity_calibration, h.toxicity_calibration_by_language = glob, {"de": de}
        h.save(tmp_path)
        back = Heads.load(tmp_path)
        z = torch.stack([h.log_odds("offensive", x), h.log_odds("hate", x)], 1).numpy()
        langs = ["de", "en", None, "de", "fr", "de"]
        want = np.array([apply_calibration((de if lang == "de" else glob).numpy(), z[i:i + 1])[0]
                         for i, lang in enumerate(langs)])
        for heads in (h, back):
            assert np.allclose(heads.toxicity(x, langs).numpy(), want, atol=1e-6)
            assert np.allclose(heads.toxicity(x).numpy(), apply_calibration(glob.numpy(), z), atol=1e-6)


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


def test_digest_is_the_content_not_the_bytes(tmp_path):
    """safetensors writes its metadata map in no fixed order: the same weights saved
    twice may differ byte for byte, and must still be the same model version."""
    import json

    from safetensors.torch import load_file, save_file

    h = _heads(3, adapter=True)
    h.save(tmp_path / "a")
    path = tmp_path / "a" / "heads.safetensors"
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "adapter.safetensors").write_bytes((tmp_path / "a" / "adapter.safetensors").read_bytes())
    # the same content, keys and metadata in reversed order
    save_file({k: tensors[k] for k in reversed(list(tensors))}, str(tmp_path / "b" / "heads.safetensors"),
              metadata={k: meta[k] for k in reversed(list(meta))})
    assert artifact_digest(tmp_path / "a") == artifact_digest(tmp_path / "b")
    # a changed value or metadata entry is a different version
    tensors["sentiment.bias"] = tensors["sentiment.bias"] + 1e-6
    save_file(tensors, str(tmp_path / "b" / "heads.safetensors"), metadata=meta)
    assert artifact_digest(tmp_path / "b") != artifact_digest(tmp_path / "a")
    save_file(load_file(str(path)), str(tmp_path / "b" / "heads.safetensors"),
              metadata={**meta, "topic_labels": json.dumps(["music", "gaming"])})
    assert artifact_digest(tmp_path / "b") != artifact_digest(tmp_path / "a")


def test_default_preprocessing_writes_no_field_so_old_artifacts_keep_their_version(tmp_path):
    from safetensors import safe_open

    _heads(0, adapter=False).save(tmp_path)
    with safe_open(str(tmp_path / "heads.safetensors"), framework="pt") as f:
        assert "text_preprocessing" not in f.metadata()


def _torch_digest(directory) -> str:
    """The digest as it was computed through torch until 2026-12-07 (every shipped
    model_version was named by it): the torch-free one must agree byte for byte."""
    import hashlib
    import json
    from pathlib import Path

    from safetensors import safe_open

    h = hashlib.sha256()
    for name in ("heads.safetensors", "adapter.safetensors"):
        p = Path(directory) / name
        if not p.exists():
            continue
        h.update(name.encode() + b"\0")
        with safe_open(str(p), framework="pt") as f:
            h.update(json.dumps(f.metadata() or {}, sort_keys=True).encode() + b"\0")
            for key in sorted(f.keys()):
                t = f.get_tensor(key).contiguous()
                h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
                h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def test_digest_without_torch_equals_the_torch_one_for_every_dtype_and_shape(tmp_path):
    from pathlib import Path

    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(5)
    tensors = {"f32": torch.randn(3, 4, generator=g), "f16": torch.randn(5, generator=g).half(),
               "bf16": torch.randn(2, 3, generator=g).bfloat16(), "f64": torch.randn(2, generator=g).double(),
               "i64": torch.arange(7), "i8": torch.tensor([-3, 4], dtype=torch.int8),
               "u8": torch.tensor([1, 255], dtype=torch.uint8), "bool": torch.tensor([True, False]),
               "empty": torch.zeros(0, 4)}  # (a 0-d tensor: the torch way could not view it as bytes)
    save_file(tensors, str(tmp_path / "heads.safetensors"), metadata={"b": "2", "a": "1"})
    save_file({"x": torch.randn(4, 2, generator=g)}, str(tmp_path / "adapter.safetensors"))
    assert artifact_digest(tmp_path) == _torch_digest(tmp_path)
    # the shipped artifacts keep their names
    for shipped in Path(__file__).resolve().parents[2].glob("models/*-heads"):
        assert artifact_digest(shipped) == _torch_digest(shipped), shipped


def test_a_summary_needs_no_torch_to_name_the_stored_vectors():
    """A background worker asks for the embedding spaces on every summary; with the
    vectors stored it never runs a model, so naming them must not import torch
    (it cost the background pool process ~250 MB and ~3 s of CPU)."""
    import subprocess
    import sys

    code = ("import sys; from enrichment_ai import summaries; from enrichment_ai.config import Settings; "
            "ids = summaries._embedding_ids(Settings()); "
            "assert all('|' in i for i in ids), ids; "
            "print(sorted(m for m in ('torch', 'transformers', 'spacy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
