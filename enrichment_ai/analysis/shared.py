"""The shared-encoder analyzer: encoder (+LoRA adapter) and every head, ONE pass per text.

``SharedEncoderAnalyzer(settings)`` is cheap to build; ``load()`` reads the encoder
(``Settings.encoder`` or the packaged all-MiniLM-L6-v2) and the heads artifact
(``Settings.heads_path``). ``analyze(texts)`` runs the encoder once per text (texts over
256 tokens are split into windows, each token still encoded once) and feeds:

- the message embedding (mean of all token states, L2-normalised) to the sentiment,
  offensive, hate, emotion, irony and topic heads;
- each sentence's embedding (mean of that sentence's token states from the same pass)
  to the toxicity head: a message's toxicity is the max over the whole message and its
  sentences, and ``details["toxicity_span"]`` names the sentence that drove it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from enrichment_ai.analysis.spans import sentence_spans
from enrichment_ai.analysis.symbols import SYMBOL_NAMES
from enrichment_ai.analysis.text import safe_str

if TYPE_CHECKING:  # pragma: no cover
    from enrichment_ai.analysis.topics import CustomTopics
    from enrichment_ai.config import Settings

#: Heads reported in ``SharedResult.scores`` (plus "toxicity").
SCORED_HEADS = ("sentiment", "offensive", "hate", "emotion", "irony")


@dataclass(slots=True)
class SharedResult:
    """One text's shared-encoder analysis. On failure: scores None and ``error`` set."""

    sentiment: float | None = None
    sentiment_label: str | None = None
    toxicity: float | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the L2-normalised message embedding the heads read (kept for summaries)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: the space of ``embedding`` (:func:`embedding_id` of the analyzer that made it)
    embedding_model: str | None = None


def clean_text(text: object, max_chars: int) -> tuple[str, dict[str, Any]]:
    """Any input -> a tokenizer-safe str of the same character length (lone surrogates
    become U+FFFD), truncated to ``max_chars``; notes for details."""
    notes: dict[str, Any] = {}
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    if len(s) > max_chars:
        notes["truncated_from_chars"] = len(s)
        s = s[:max_chars]
    return safe_str(s).replace("\x00", " "), notes


def embedding_id(settings: "Settings") -> str:
    """Names the vectors of :meth:`SharedEncoderAnalyzer.embed` without loading anything:
    the base encoder (setting) plus the digest of the heads artifact that carries the
    adapter. Stored embeddings are keyed by it (``message_embeddings.encoder``)."""
    return _embedding_id(settings.encoder or "all-MiniLM-L6-v2", str(settings.heads_path))


@functools.lru_cache(maxsize=8)
def _embedding_id(base: str, heads_path: str) -> str:
    """Cached per process: every summary asks, and the digest hashes the artifact's tensors."""
    from enrichment_ai.analysis.artifact import artifact_digest

    return f"{base}|{artifact_digest(Path(heads_path))[:12]}"


class SharedEncoderAnalyzer:
    """Encoder + adapter + heads; see the module docstring."""

    languages: frozenset[str] = frozenset({"en"})
    #: also score text of undetermined language ('und'): set at load for multilingual artifacts
    scores_any_language: bool = False

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.heads_path = Path(settings.heads_path)
        self.encoder = None
        self.heads = None
        self._version: str | None = None
        #: the artifact card's ``coverage`` block (None: English only; analysis/coverage.py)
        self.coverage: dict | None = None

    # -- loading ------------------------------------------------------------------
    def load(self) -> "SharedEncoderAnalyzer":
        """Load the encoder, inject and load the adapter (if any), load the heads."""
        import hashlib

        from enrichment_ai.analysis.encoder import Encoder
        from enrichment_ai.analysis.heads import Heads, artifact_digest, read_card
        from enrichment_ai.analysis.lora import inject_lora, load_lora_state_dict, merge_lora

        heads = Heads.load(self.heads_path)
        encoder = Encoder(self.settings)
        card = read_card(self.heads_path)
        trained_on = card.get("base_encoder")
        if trained_on and trained_on not in (encoder.name, self.settings.encoder):
            # same width is not the same representation (MiniLM and mE5-small are both 384-d)
            raise ValueError(f"heads in {self.heads_path} were trained on {trained_on!r}, not on encoder "
                             f"{self.settings.encoder!r}; train heads for it with `enrichment-ai train` "
                             "and point ENRICHMENT_HEADS_PATH at them")
        encoder = encoder.load()
        encoder.symbol_names = heads.text_preprocessing == SYMBOL_NAMES
        dim = next(iter(heads.heads.values())).weight.shape[1]
        if dim != encoder.dim:
            raise ValueError(f"heads in {self.heads_path} expect {dim}-d embeddings but encoder {encoder.path} "
                             f"gives {encoder.dim}; train heads for this encoder with `enrichment-ai train`")
        if heads.adapter:
            cfg = heads.adapter_config or {}
            inject_lora(encoder.model, cfg["rank"], cfg["alpha"], cfg["targets"], cfg.get("layers"))
            load_lora_state_dict(encoder.model, {k: v.to(encoder.device) for k, v in heads.adapter.items()})
            merge_lora(encoder.model)  # inference only: one matmul per layer, not three
            encoder.model.to(encoder.device).eval()
        encoder.cast_for_inference()
        self.encoder, self.heads = encoder, heads
        self.coverage = card.get("coverage") or None
        # instance attribute over the class default ({"en"}): every language the artifact covers
        self.languages = frozenset(self.coverage["languages"]) if self.coverage else frozenset({"en"})
        # a multilingual artifact scores text whatever its language, so also text whose
        # language id stayed 'und' (an English-only one would score a foreign text as noise)
        self.scores_any_language = len(self.languages) > 1
        enc_id = encoder.name
        if self.settings.encoder is not None:
            enc_id += "-" + hashlib.sha256(self.settings.encoder.encode()).hexdigest()[:6]
        kind = "lora" if heads.adapter else "heads"
        family = str(card.get("name") or "tweeteval-heads").removesuffix("-heads")  # tweeteval | multilingual
        self._version = f"{enc_id}+{family}-{kind}-{artifact_digest(self.heads_path)[:12]}"
        self.embedding_model = embedding_id(self.settings)
        return self

    @property
    def version(self) -> str:
        """Identifies encoder + adapter + heads exactly (hash of the weight files)."""
        if self._version is None:
            raise RuntimeError("SharedEncoderAnalyzer.load() must be called first")
        return self._version

    # -- inference ----------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings (the same ones the heads read), (n, dim)."""
        if self.encoder is None:
            raise RuntimeError("SharedEncoderAnalyzer.load() must be called first")
        cleaned = [clean_text(t, self.settings.max_chars)[0] for t in texts]
        return self.encoder.embed(cleaned)

    def analyze(self, texts: list[str], custom_topics: "CustomTopics | None" = None,
                languages: "list[str | None] | None" = None) -> list[SharedResult]:
        """One result per text, in order. A text that fails gets an error result.

        ``custom_topics`` (server-defined labels) replaces the TweetTopicXL taxonomy;
        ``languages`` (one code per text, optional) selects the toxicity calibration of
        each text's language where the artifact has one.
        """
        if self.encoder is None:
            raise RuntimeError("SharedEncoderAnalyzer.load() must be called first")
        texts = list(texts)
        prepared = [clean_text(t, self.settings.max_chars) for t in texts]
        langs = list(languages) if languages is not None else [None] * len(texts)
        try:
            return self._analyze([p[0] for p in prepared], [p[1] for p in prepared], custom_topics, langs)
        except Exception:  # noqa: BLE001 - isolate the bad item(s), never fail the batch
            out = []
            for (text, notes), lang in zip(prepared, langs):
                try:
                    out.extend(self._analyze([text], [notes], custom_topics, [lang]))
                except Exception as exc:  # noqa: BLE001
                    out.append(SharedResult(error=f"{type(exc).__name__}: {exc}"[:300], details=dict(notes)))
            return out

    def _analyze(self, texts: list[str], notes: list[dict], custom_topics, langs) -> list[SharedResult]:
        import torch

        if not texts:
            return []
        heads = self.heads
        states = self.encoder.token_states(texts)
        x = torch.nn.functional.normalize(torch.stack([s.mean() for s in states]), dim=-1)
        vectors = x.numpy()
        probs = {task: heads.heads[task].probs(x) for task in SCORED_HEADS}
        tox_whole = heads.toxicity(x, langs)
        if custom_topics is not None:
            topic_lists = custom_topics.predict(vectors)
        else:
            topic_lists = self._taxonomy_topics(x)
        results = []
        for i, text in enumerate(texts):
            scores = {
                task: {lab: round(float(p), 6) for lab, p in zip(heads.heads[task].labels, probs[task][i])}
                for task in SCORED_HEADS
            }
            sent = scores["sentiment"]
            tox, span = self._span_toxicity(text, states[i], float(tox_whole[i]), langs[i])
            scores["toxicity"] = {"toxic": round(tox, 6)}
            details = dict(notes[i])
            if span is not None:
                details["toxicity_span"] = span
            results.append(
                SharedResult(
                    sentiment=round(sent["positive"] - sent["negative"], 6),
                    sentiment_label=max(sent, key=sent.get),
                    toxicity=round(tox, 6),
                    scores=scores,
                    topics=topic_lists[i],
                    details=details,
                    embedding=vectors[i],
                    embedding_model=self.embedding_model,
                )
            )
        return results

    def _taxonomy_topics(self, x) -> list[list[str]]:
        from enrichment_ai.analysis.topics import predict_multilabel

        heads = self.heads
        if heads.topic_weight is None:
            return [[] for _ in range(x.shape[0])]
        p = heads.topic_probs(x).numpy()
        chosen = predict_multilabel(p, heads.topic_threshold.numpy())
        return [[lab for lab, on in zip(heads.topic_labels, row) if on] for row in chosen]

    @staticmethod
    def _sentence_vectors(text: str, states) -> tuple[list, list[tuple[int, int]]]:
        """Each sentence's mean token state from the message's pass (not yet normalised), and
        its span; none for a single sentence (the whole message is that sentence)."""
        spans = sentence_spans(text)
        if len(spans) < 2:
            return [], []
        vecs, kept = [], []
        for start, end in spans:
            v = states.span_mean(start, end)
            if v is not None:
                vecs.append(v)
                kept.append((start, end))
        return vecs, kept

    def _span_toxicity(self, text: str, states, whole: float, lang: str | None = None) -> tuple[float, dict | None]:
        """Max of the whole-message toxicity and every sentence's (pooled from the same pass)."""
        import torch

        vecs, kept = self._sentence_vectors(text, states)
        if not vecs:
            return whole, None
        tox = self.heads.toxicity(torch.nn.functional.normalize(torch.stack(vecs), dim=-1), [lang] * len(vecs)).tolist()
        j = int(np.argmax(tox))
        start, end = kept[j]
        span = {"text": text[start:end], "start": start, "end": end, "toxicity": round(tox[j], 6),
                "sentences": len(kept), "message_toxicity": round(whole, 6)}
        return max(whole, tox[j]), span

    def toxicity_log_odds(self, texts: list[str], chunk: int = 256) -> list[np.ndarray]:
        """Per text, the [offensive, hate] log-odds of every candidate its toxicity is the
        maximum over, as :meth:`analyze` computes them: row 0 the whole message, then each
        sentence. What the toxicity calibration is fitted on (``training/calibration.py``)."""
        import torch

        if self.encoder is None:
            raise RuntimeError("SharedEncoderAnalyzer.load() must be called first")
        heads, out = self.heads, []
        cleaned = [clean_text(t, self.settings.max_chars)[0] for t in texts]
        for i in range(0, len(cleaned), chunk):
            part = cleaned[i:i + chunk]
            states = self.encoder.token_states(part)
            for text, st in zip(part, states):
                vecs = [st.mean()] + self._sentence_vectors(text, st)[0]
                x = torch.nn.functional.normalize(torch.stack(vecs), dim=-1)
                out.append(torch.stack([heads.log_odds("offensive", x), heads.log_odds("hate", x)], 1).numpy())
        return out
