"""Emoji/symbols spelled out for the encoder (enrichment_ai.analysis.symbols)."""

from __future__ import annotations

import pytest

from enrichment_ai.analysis.symbols import _spell, expand_unknown
from enrichment_ai.config import Settings


@pytest.fixture(scope="module")
def encoder():
    from enrichment_ai.analysis.encoder import Encoder

    # MiniLM's WordPiece vocabulary lacks most emoji (XLM-R's, the default's, has them)
    return Encoder(Settings(device="cpu", encoder="all-MiniLM-L6-v2")).load()


def test_spell_names_symbols_and_drops_modifiers():
    assert _spell("😂") == "face with tears of joy"
    assert _spell("happy😂") == "happy face with tears of joy"
    assert _spell("😂😂😂") == "face with tears of joy"  # a run is read once
    assert _spell("👍🏽") == "thumbs up sign"  # skin tone dropped
    assert _spell("❤\ufe0f") == "heavy black heart"  # variation selector dropped
    assert _spell("🇺🇸") == "flag"
    assert _spell("abc") == "abc"


def test_unknown_emoji_becomes_its_name_with_original_offsets(encoder):
    text = "so happy😂 today"
    plain = encoder.encode([text])[0]
    assert encoder.tokenizer.unk_token_id in plain[0]  # the vocabulary really lacks it
    encoder.symbol_names = True
    try:
        ids, offs = encoder.encode([text])[0]
    finally:
        encoder.symbol_names = False
    tokens = encoder.tokenizer.convert_ids_to_tokens(ids)
    assert encoder.tokenizer.unk_token_id not in ids
    assert tokens[:2] == ["so", "happy"] and "joy" in tokens and tokens[-1] == "today"
    # every spelled-out token points at the [UNK] span "happy😂" of the original text
    spelled = [o for t, o in zip(tokens, offs) if t in ("face", "tears", "joy")]
    assert spelled and all(text[s:e] == "happy😂" for s, e in spelled)
    assert text[offs[-1][0]:offs[-1][1]] == "today"


def test_text_without_unknown_tokens_is_untouched(encoder):
    text = "plain words, nothing odd"
    enc = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = expand_unknown(encoder.tokenizer, text, enc["input_ids"], enc["offset_mapping"])
    assert ids == enc["input_ids"] and offs == [tuple(o) for o in enc["offset_mapping"]]


def test_unknown_non_symbol_stays_unknown(encoder):
    text = "\u2028\u0378x"  # no symbol to spell: the [UNK] (if any) is kept as it is
    enc = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, _ = expand_unknown(encoder.tokenizer, text, enc["input_ids"], enc["offset_mapping"])
    assert ids == enc["input_ids"]
