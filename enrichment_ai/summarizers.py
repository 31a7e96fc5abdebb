"""Summarizers: a window of chat messages in, one :class:`Summary` out (no I/O).

- :class:`ExtractiveSummarizer` (default, offline, CPU): ranks the window's informative
  messages by centrality over the shared encoder's embeddings, picks key points with
  maximal marginal relevance, attributes every quote to its author and keeps the id of the
  message it came from. A window without information says so instead of inventing one.
- :class:`Seq2SeqSummarizer`: any local Hugging Face seq2seq checkpoint (T5, BART, …)
  writes the summary sentence; key points still come from the extractive ranking so they
  always link to real messages.

Formulas and thresholds are documented in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np

from enrichment_ai.analysis.text import has_letters

#: What a toxic quote is replaced with, in summaries and in abstractive model input.
MASK = "[message hidden: flagged as toxic]"
#: Summary of a window where nothing informative was said.
SMALL_TALK = "Small talk; no key points."
#: Fewest content words that make a message a key-point candidate.
MIN_CONTENT_WORDS = 4
MAX_KEY_POINTS = 5
MMR_LAMBDA = 0.7
DUPLICATE_SIMILARITY = 0.95
QUOTE_CHARS = 200
#: A quote ending in one of these needs no "." of the summary's own (Latin, CJK full-width,
#: Arabic, Devanagari, Greek question mark).
_SENTENCE_ENDS = (".", "!", "?", "…", "。", "！", "？", "؟", "।", ";")

#: Texts in, one embedding row per text out; ``None``: no encoder in this process (a
#: background worker), and the summarizer places those messages by their words
#: (:func:`word_vectors`) instead.
Embed = Callable[[Sequence[str]], "np.ndarray | None"]

#: The embedding space of :func:`word_vectors`.
WORDS_SPACE = "words:crc32-512"
_WORD_DIM = 512

#: Combining marks (Mn/Mc/Me) of the BMP: Python's ``\w`` excludes them, and Devanagari,
#: Bengali, Tamil, Thai … write vowel signs and viramas as marks, so ``\w+`` cut
#: "समीक्षा करेंगे" into 'सम', 'क', 'ष', 'कर', 'ग' — every piece under 3 characters, and a
#: substantive Hindi conversation became "Small talk". (``re`` has no ``\p{M}``; the
#: class is built once from unicodedata rather than adding the ``regex`` package.)
_MARKS = "".join(chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me"))
_WORD = re.compile(f"[\\w{re.escape(_MARKS)}]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
#: Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer): a run is a
#: phrase, counted one word per :data:`_UNSPACED_CHARS_PER_WORD` characters.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
_UNSPACED_CHARS_PER_WORD = 4
_CJK_CHARS_PER_WORD = 2
_FILLER = frozenset(
    """
    the and for you your are was were but not all any can had has have her his how its
    our out who why what when where which with this that these those there their they them
    then than too very just yes yeah yep nope okay ok lol lmao rofl haha hahaha hehe omg
    wow nice cool good great thanks thank thx ty np hey hello hiya morning night evening
    afternoon bye cya see soon gonna wanna got get gets getting sure well also really
    like from into about been being will would could should did does doing done its it's
    i'm im you're youre dont don't cant can't same here too all guys everyone anyone some
    one two lot lots much more most still even back over now today tonight tomorrow
    """.split()
)


@dataclass(frozen=True, slots=True)
class WindowMessage:
    """One message of a summary window, as the summarizer needs it."""

    id: UUID
    author_id: UUID
    author: str
    text: str
    toxic: bool = False
    #: the message's stored embedding from its analysis pass (None: embed the text)
    embedding: Any = field(default=None, repr=False, compare=False)
    #: the embedding space of ``embedding`` (and of the summarizer's ``embed`` where it is
    #: None); similarity is only measured between messages of one space
    space: str | None = field(default=None, compare=False)


@dataclass(slots=True)
class Summary:
    """What a summarizer produces for one window."""

    summary: str
    key_points: list[str] = field(default_factory=list)
    key_point_message_ids: list[UUID] = field(default_factory=list)
    participants: list[UUID] = field(default_factory=list)
    message_count: int = 0
    small_talk: bool = False
    model: str = "extractive.v1"


def content_words(text: str) -> int:
    """Words that carry information: not filler, at least 3 letters or a number;
    CJK runs count one word per two characters. A text without a letter has none: numbers
    alone ("9 0 1 3 8 3 8 3 2 7") say nothing a recap can quote, and the analysis gives such
    a message no scores and no vector."""
    if not has_letters(text):
        return 0
    return sum(max(1, n // per) if per else 1 for _tok, n, per in _content_tokens(text))


def _content_tokens(text: str) -> Iterator[tuple[str, int, int]]:
    """``(token, script characters, characters per word)`` for the tokens that carry
    information: runs of a script written without spaces (CJK: a word per 2 characters;
    Thai, Lao, Myanmar, Khmer: per 4), and other words — letters with their combining
    marks — not filler, with at least 3 characters or a number (per word 0: one word).
    What :func:`content_words` counts and :func:`word_vectors` hashes."""
    for tok in _WORD.findall(text.lower()):
        if n := len(_CJK.findall(tok)):
            yield tok, n, _CJK_CHARS_PER_WORD
        elif n := len(_UNSPACED.findall(tok)):
            yield tok, n, _UNSPACED_CHARS_PER_WORD
        elif (len(tok) >= 3 or tok.isdigit()) and tok not in _FILLER:
            yield tok, 0, 0


def word_vectors(texts: Sequence[str]) -> np.ndarray:
    """Hashed bags of content words (CRC32, the same in every process), L2-normalised:
    the stand-in for a message without a stored embedding in a process that holds no
    encoder. Two messages are alike here only if they share words; that places the rare
    key-point candidate without a stored vector (a row past the 2-day cache, of another
    model version) within the window without loading ~1.4 GB of models beside the
    analysis pool."""
    out = np.zeros((len(texts), _WORD_DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for tok, _n, per in _content_tokens(text):
            # a run without spaces between its words: its character pairs stand for them
            for piece in ([tok[j:j + 2] for j in range(max(1, len(tok) - 1))] if per else [tok]):
                out[i, zlib.crc32(piece.encode()) % _WORD_DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def quote(msg: WindowMessage) -> str:
    """``"author: text"``, shortened, with toxic text masked."""
    text = MASK if msg.toxic else " ".join(msg.text.split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"{msg.author}: {text}"


def as_sentence(text: str) -> str:
    """``text`` ended with "." unless it already ends a sentence, in any script."""
    return text if text.endswith(_SENTENCE_ENDS) else text + "."


def participants(window: Sequence[WindowMessage]) -> tuple[list[UUID], list[str]]:
    """Authors in order of first appearance (ids, names)."""
    ids: dict[UUID, str] = {}
    for m in window:
        ids.setdefault(m.author_id, m.author)
    return list(ids), list(ids.values())


def _who(names: list[str]) -> str:
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def mmr_select(emb: np.ndarray, k: int, lam: float = MMR_LAMBDA, spaces: Sequence[Any] | None = None) -> list[int]:
    """Indices of ``k`` rows of L2-normalised ``emb`` by maximal marginal relevance:
    centrality (mean similarity to the others) traded against similarity to what is
    already chosen; near-duplicates (≥ DUPLICATE_SIMILARITY) are never both chosen.

    ``spaces`` (one label per row): rows of different embedding spaces (two encoders) are
    unrelated, similarity 0 — a message is central within the conversation held in its
    space, weighted by that part's share of the window."""
    n = len(emb)
    if n == 0:
        return []
    sim = emb @ emb.T
    if spaces is not None:
        labels = np.asarray([str(s) for s in spaces])
        sim = np.where(labels[:, None] == labels[None, :], sim, 0.0)
    centrality = (sim.sum(axis=1) - np.diag(sim)) / max(1, n - 1)
    chosen: list[int] = []
    while len(chosen) < min(k, n):
        best, best_val = -1, -math.inf
        for i in range(n):
            if i in chosen:
                continue
            redundancy = max((sim[i, j] for j in chosen), default=0.0)
            if chosen and redundancy >= DUPLICATE_SIMILARITY:
                continue
            val = lam * centrality[i] - (1 - lam) * redundancy
            if val > best_val:
                best, best_val = i, val
        if best < 0:
            break
        chosen.append(best)
    return chosen


def _blocks(vecs: Sequence[np.ndarray], spaces: Sequence[Any]) -> np.ndarray:
    """Rows in one matrix, each space's vectors in a block of columns of its own (zeros
    elsewhere), so spaces of different widths stack and never look alike."""
    width: dict[str, int] = {}
    for label, v in zip(map(str, spaces), vecs):
        width.setdefault(label, len(v))
    start, at = {}, 0
    for label, w in width.items():
        start[label], at = at, at + w
    out = np.zeros((len(vecs), at), dtype=np.float32)
    for i, (label, v) in enumerate(zip(map(str, spaces), vecs)):
        if len(v) != width[label]:
            raise ValueError(f"embedding space {label!r} holds vectors of {width[label]} and {len(v)} values")
        out[i, start[label]:start[label] + len(v)] = v
    return out


class ExtractiveSummarizer:
    """Centrality + MMR over shared-encoder embeddings; quotes attributed to authors."""

    name = "extractive.v1"

    def __init__(self, embed: Embed, *, max_points: int = MAX_KEY_POINTS) -> None:
        self._embed = embed
        self._max_points = max_points

    def load(self) -> ExtractiveSummarizer:
        return self

    def key_points(self, window: Sequence[WindowMessage]) -> list[WindowMessage]:
        """The chosen key-point messages in chronological order ([] for small talk)."""
        candidates = [m for m in window if content_words(m.text) >= MIN_CONTENT_WORDS]
        if len(candidates) < 2:
            return []
        emb, spaces = self._embeddings(candidates)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = emb / np.where(norms == 0, 1, norms)
        k = min(self._max_points, max(1, math.ceil(len(candidates) / 5)))
        picked = sorted(mmr_select(emb, k, spaces=spaces if len(set(spaces)) > 1 else None))
        return [candidates[i] for i in picked]

    def _embeddings(self, messages: Sequence[WindowMessage]) -> tuple[np.ndarray, list[Any]]:
        """Each message's stored embedding and its space; the encoder runs only for those
        without one, and where this process has none (``embed`` returns None) their words
        stand in (:data:`WORDS_SPACE`). Rows of different spaces may differ in width: each
        space gets its own block of columns (they are compared within a space only)."""
        missing = [i for i, m in enumerate(messages) if m.embedding is None]
        rows: list[Any] = [m.embedding for m in messages]
        spaces: list[Any] = [m.space for m in messages]
        if missing:
            texts = [messages[i].text for i in missing]
            fresh = self._embed(texts)
            if fresh is None:
                fresh = word_vectors(texts)
                for i in missing:
                    spaces[i] = WORDS_SPACE
            for j, i in enumerate(missing):
                rows[i] = fresh[j]
        return _blocks([np.asarray(r, dtype=np.float32).ravel() for r in rows], spaces), spaces

    def summarize(self, window: Sequence[WindowMessage]) -> Summary:
        ids, names = participants(window)
        points = self.key_points(window)
        head = f"{len(window)} messages from {len(ids)} participants ({_who(names)})."
        if not points:
            text = f"{SMALL_TALK} {head}"
        else:
            text = f"{head} " + " ".join(as_sentence(quote(m)) for m in points)
        return Summary(
            summary=text,
            key_points=[quote(m) for m in points],
            key_point_message_ids=[m.id for m in points],
            participants=ids,
            message_count=len(window),
            small_talk=not points,
            model=self.name,
        )


class Seq2SeqSummarizer:
    """A Hugging Face seq2seq checkpoint (local path or id in the local cache) writes the
    summary; key points come from :class:`ExtractiveSummarizer`. Construct cheap,
    :meth:`load` reads the weights (CPU)."""

    def __init__(self, checkpoint: str, embed: Embed, *, max_new_tokens: int = 96) -> None:
        self.checkpoint = checkpoint
        self.name = f"seq2seq:{checkpoint}"
        self._extractive = ExtractiveSummarizer(embed)
        self._max_new_tokens = max_new_tokens
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> Seq2SeqSummarizer:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        self._model = AutoModelForSeq2SeqLM.from_pretrained(self.checkpoint).eval()
        return self

    def _generate(self, transcript: str) -> str:
        import torch

        if self._model is None:
            raise RuntimeError("Seq2SeqSummarizer.load() was not called")
        prefix = "summarize: " if self._model.config.model_type == "t5" else ""
        enc = self._tokenizer(prefix + transcript, return_tensors="pt", truncation=True, max_length=512)
        with torch.inference_mode():
            out = self._model.generate(**enc, max_new_tokens=self._max_new_tokens, num_beams=2)
        return self._tokenizer.decode(out[0], skip_special_tokens=True).strip()

    #: Tokens of transcript the model reads (its encoder's input is cut at 512).
    TRANSCRIPT_TOKENS = 480

    def transcript(self, window: Sequence[WindowMessage], key_ids: set) -> str:
        """The lines the model reads, in order: every key-point message (they span the whole
        window), then the newest other messages while they fit :data:`TRANSCRIPT_TOKENS`.
        The whole window, cut at 512 tokens, showed a half-hour recap of a busy channel
        only its first minutes. Toxic text is masked (:func:`quote`)."""
        if self._tokenizer is None:
            raise RuntimeError("Seq2SeqSummarizer.load() was not called")
        lines = [quote(m) for m in window]
        cost = [len(ids) + 1 for ids in self._tokenizer(lines, add_special_tokens=False)["input_ids"]]
        keep, used = set(), 0
        order = [i for i, m in enumerate(window) if m.id in key_ids]
        order += [i for i in reversed(range(len(window))) if window[i].id not in key_ids]
        for i in order:
            if used + cost[i] <= self.TRANSCRIPT_TOKENS:
                keep.add(i)
                used += cost[i]
        return "\n".join(lines[i] for i in sorted(keep))

    def summarize(self, window: Sequence[WindowMessage]) -> Summary:
        base = self._extractive.summarize(window)
        base.model = self.name
        if base.small_talk:
            return base  # never let a model invent a topic for small talk
        generated = self._generate(self.transcript(window, set(base.key_point_message_ids)))
        if generated:
            base.summary = generated
        return base


def build_summarizer(summarizer: str, embed: Embed) -> ExtractiveSummarizer | Seq2SeqSummarizer:
    """``'extractive'`` or a seq2seq checkpoint (``Settings.summarizer``); not loaded."""
    if summarizer == "extractive":
        return ExtractiveSummarizer(embed)
    return Seq2SeqSummarizer(summarizer, embed)
