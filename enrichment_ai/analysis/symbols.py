"""Emoji and other symbols the encoder's vocabulary lacks, read as their Unicode names.

all-MiniLM-L6-v2 has a BERT-uncased WordPiece vocabulary: an emoji (and any word glued
to one, e.g. ``happy😂``) becomes ``[UNK]``, so about 11% of TweetEval tweets lose the
very token that carries their emotion. :func:`expand_unknown` re-tokenizes each
``[UNK]`` span with its symbols spelled out (``😂`` -> ``face with tears of joy``,
flags -> ``flag``; skin tones, variation selectors and joiners dropped; a run of the same
symbol read once). Every new token keeps the character span of the ``[UNK]`` it
replaces, so offsets still point into the original text (sentence pooling and
``toxicity_span`` are unaffected). Training and inference share this function; the heads
artifact records whether it was used (``Heads.text_preprocessing``).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: ``Heads.text_preprocessing`` value of artifacts trained with :func:`expand_unknown`.
SYMBOL_NAMES = "symbol-names-v1"


def _spell(span: str) -> str:
    """``span`` with every symbol (Unicode category So) replaced by its lower-case name."""
    out: list[str] = []
    last = None
    for ch in span:
        cat = unicodedata.category(ch)
        if cat == "So":
            name = unicodedata.name(ch, "").lower()
            if name.startswith("regional indicator symbol"):
                name = "flag"
            if name and name != last:
                out.append(f" {name} ")
            last = name
        elif cat in ("Mn", "Cf", "Sk", "Me"):  # variation selectors, ZWJ, skin tones, keycaps
            continue
        else:
            out.append(ch)
            last = None
    return "".join(out).strip()


@lru_cache(maxsize=4096)
def _span_ids(tokenizer, span: str) -> tuple[int, ...]:
    spelled = _spell(span)
    if not spelled or spelled == span:
        return ()
    ids = tokenizer(spelled, add_special_tokens=False, verbose=False)["input_ids"]
    return tuple(i for i in ids if i != tokenizer.unk_token_id)[:24]


def expand_unknown(tokenizer, text: str, ids: list[int], offsets: list) -> tuple[list[int], list[tuple[int, int]]]:
    """Replace each ``[UNK]`` whose span holds symbols by the tokens of their names
    (offsets = the ``[UNK]``'s span). Texts without ``[UNK]`` come back unchanged."""
    unk = tokenizer.unk_token_id
    if unk is None or unk not in ids:
        return list(ids), [tuple(o) for o in offsets]
    new_ids: list[int] = []
    new_offs: list[tuple[int, int]] = []
    for i, (s, e) in zip(ids, offsets):
        if i == unk:
            spelled = _span_ids(tokenizer, text[s:e])
            if spelled:
                new_ids.extend(spelled)
                new_offs.extend([(s, e)] * len(spelled))
                continue
        new_ids.append(i)
        new_offs.append((s, e))
    return new_ids, new_offs
