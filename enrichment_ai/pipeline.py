"""``Enricher``: a batch of texts in, one :class:`~enrichment_ai.types.Analysis` per text out.

Pure computation, no I/O beyond reading model files in :meth:`Enricher.load`. Per batch:

1. hygiene per text: ``None``/empty/whitespace → skipped (``reason="empty"``); lone
   surrogates and control characters are replaced/removed and longer texts cut to
   ``Settings.max_chars`` (each recorded in ``details``); text without a single letter
   outside links, mentions and custom emoji (emoji, digits, punctuation, a bare link)
   → ``und``, no scores, a reason;
2. language id: ONE detector call for every remaining text (with the caller's optional
   per-text :class:`~enrichment_ai.analysis.language_prior.LanguageHint`: a platform
   prior for text too short or ambiguous to decide alone);
3. shared encoder + heads: ONE ``analyze`` call for the texts whose language the shared
   analyzer supports (``.languages``) — with a multilingual encoder
   (``.scores_any_language``) also for text whose language stayed ``und`` ("shut up
   loser" with no platform hint: too short for language id, not for a moderator), scored
   with the global toxicity calibration and marked transferred in ``details["coverage"]``;
   the others get NULL scores and a reason such as
   ``language 'ja' not supported by sentiment/toxicity heads``;
4. Hugging Face backend (only when ``Settings.hf_models`` is set): ONE call for texts in
   ``Settings.hf_languages``; a configured task's probabilities replace that head's
   output (``sentiment`` also sets sentiment/sentiment_label, ``toxicity`` sets toxicity
   from its ``toxic`` label);
5. entities: ONE spaCy ``pipe`` call per language that has a pipeline (en, fr by
   default); other texts get none and ``details["entities_reason"]``.

A stage that fails for the batch is retried text by text; a text that still fails gets
its error in ``details["errors"]`` and NULLs — :meth:`Enricher.enrich_batch` never raises
because of one text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from enrichment_ai.analysis import registry
from enrichment_ai.analysis.coverage import GROUPS, row_coverage, transferred_groups
from enrichment_ai.analysis.language import UND
from enrichment_ai.analysis.language_prior import LanguageHint
from enrichment_ai.analysis.text import has_letters, sanitize, strip_chat_noise
from enrichment_ai.config import Settings
from enrichment_ai.types import Analysis

#: Bumped when the pipeline's own rules change (part of model_version). 2: a text whose
#: only letters are in links, mentions or custom emoji is not scored (2026-12-07).
PIPELINE_VERSION = 2
MODEL_VERSION_MAX = 128

REASON_EMPTY = "empty"
REASON_NO_LETTERS = "no letters (emoji, digits, punctuation or links only): language undetermined, no scores"
REASON_UND = "language undetermined (too short or ambiguous, confidence {conf:.2f}): sentiment/toxicity heads need a supported language"
REASON_UNSUPPORTED = "language '{code}' not supported by sentiment/toxicity heads"
REASON_FAILED = "analysis failed: {error}"
REASON_NOT_VALIDATED = ("language '{code}': {groups} not validated for this language (transferred from other "
                        "languages' training data) and the server requires validated languages only")
ERR_NOT_LOADED = "Enricher: call load() before enrich_batch()/embed()"


def _run_stage(fn: Callable[[list], list], items: list) -> list[Any]:
    """``fn(items)``; if the batch call raises, call it per item, an exception per failure."""
    if not items:
        return []
    try:
        out = fn(items)
        if len(out) == len(items):
            return list(out)
    except Exception:  # noqa: BLE001 - isolate the bad item below
        pass
    results: list[Any] = []
    for item in items:
        try:
            results.append(fn([item])[0])
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
    return results


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Enricher:
    """Runs every analyzer over a batch; see the module docstring.

    Construct cheap (analyzers are built from :mod:`enrichment_ai.analysis.registry` but
    not loaded); :meth:`load` reads all models once per process.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.language = registry.create(registry.LANGUAGE_DETECTORS[settings.language_detector], settings)
        from enrichment_ai.analysis.routed import routes_english

        # English through the English artifact where the default is multilingual (analysis/routed.py)
        self.shared = registry.create("shared.routed.v1" if routes_english(settings) else "shared.minilm.v1", settings)
        self.entities = registry.create("entities.spacy.v1", settings)
        self.hf = registry.create("hf.v1", settings) if settings.hf_models else None
        self._model_version: str | None = None
        self._embedding_model = ""

    def load(self) -> Enricher:
        """Load every analyzer (language models, encoder + heads, spaCy, HF checkpoints)."""
        self.language.load()
        self.shared.load()
        self.entities.load()
        if self.hf is not None:
            self.hf.load()
        self._model_version = self._build_version()
        self._embedding_model = self.shared.embedding_model
        return self

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has run."""
        return self._model_version is not None

    @property
    def model_version(self) -> str:
        """Encoder + heads + analyzer versions, at most 128 characters.

        ``<shared>|<language>|<entities>[|<hf>]|p<N>``; if that were longer than 128, the
        tail after the shared analyzer's version becomes a 16-hex digest of the whole.
        """
        if self._model_version is None:
            raise RuntimeError(ERR_NOT_LOADED)
        return self._model_version

    def _build_version(self) -> str:
        parts = [self.shared.version, self.language.version, self.entities.version]
        if self.hf is not None:
            parts.append(self.hf.version)
        parts.append(f"p{PIPELINE_VERSION}")
        full = "|".join(parts)
        if len(full) <= MODEL_VERSION_MAX:
            return full
        digest = hashlib.sha256(full.encode()).hexdigest()[:16]
        return f"{parts[0][: MODEL_VERSION_MAX - 18]}|{digest}"

    @property
    def embedding_model(self) -> str:
        """Names the encoder + adapter behind :meth:`embed` (``Analysis.embedding_model``
        names each row's own: with English routed, English rows are in another space)."""
        if not self.loaded:
            raise RuntimeError(ERR_NOT_LOADED)
        return self._embedding_model

    def embed(self, texts: Sequence[str]):
        """L2-normalised sentence embeddings from the shared encoder, shape (n, dim)."""
        if not self.loaded:
            raise RuntimeError(ERR_NOT_LOADED)
        return self.shared.embed([sanitize(t or "", self.settings.max_chars).text for t in texts])

    # -- the batch ---------------------------------------------------------------------
    def enrich_batch(
        self, texts: Sequence[str | None], hints: Sequence[LanguageHint | None] | None = None,
        validated_only: Sequence[bool] | None = None,
    ) -> list[Analysis]:
        """One :class:`Analysis` per text, same length and order.

        ``hints`` (optional; one :class:`~enrichment_ai.analysis.language_prior.LanguageHint`
        or ``None`` per text) tell the language detector what the platform knows (server
        and author locale, the channel's recent languages); used only where the text
        alone is ambiguous, recorded as ``details["language_source"] = "prior"``.

        ``validated_only`` (optional, one flag per text: the server's
        ``validated_languages_only``): scores of head groups that are only transferred to
        the text's language (``details["coverage"]``, analysis/coverage.py) become NULL,
        with a reason.
        """
        if not self.loaded:
            raise RuntimeError(ERR_NOT_LOADED)
        if hints is not None and len(hints) != len(texts):
            raise ValueError(f"enrich_batch: {len(hints)} hints for {len(texts)} texts")
        if validated_only is not None and len(validated_only) != len(texts):
            raise ValueError(f"enrich_batch: {len(validated_only)} validated_only flags for {len(texts)} texts")
        version = self.model_version
        out: list[Analysis] = []
        clean: dict[int, str] = {}
        for i, raw in enumerate(texts):
            text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
            if not text.strip():
                out.append(Analysis(UND, 0.0, model_version=version, skipped=True, reason=REASON_EMPTY))
                continue
            s = sanitize(text, self.settings.max_chars)
            a = Analysis(UND, 0.0, model_version=version, details=dict(s.notes))
            out.append(a)
            # the letters of a link, a mention or a custom emoji are not the author's words:
            # "https://example.com/you-are-a-stupid-idiot" alone scored 0.99 toxicity
            if has_letters(strip_chat_noise(s.text)):
                clean[i] = s.text
            else:
                a.reason = REASON_NO_LETTERS
        idx = list(clean)
        self._languages(out, idx, clean, hints)
        self._shared_scores(out, idx, clean)
        if self.hf is not None:
            self._hf_scores(out, idx, clean)
        self._entities(out, idx, clean)
        if validated_only is not None:
            for i in idx:
                if validated_only[i]:
                    _drop_transferred(out[i])
        return out

    def _languages(self, out: list[Analysis], idx: list[int], clean: dict[int, str], hints) -> None:
        pairs = [(clean[i], None if hints is None else hints[i]) for i in idx]
        guesses = _run_stage(lambda items: self.language.detect([t for t, _ in items], [h for _, h in items]), pairs)
        for i, g in zip(idx, guesses):
            if isinstance(g, Exception):
                out[i].details.setdefault("errors", {})["language"] = _err(g)
            else:
                out[i].language, out[i].language_confidence = g.code, round(float(g.confidence), 4)
                if g.source != "text":
                    out[i].details["language_source"] = g.source

    def _shared_scores(self, out: list[Analysis], idx: list[int], clean: dict[int, str]) -> None:
        supported = self.shared.languages
        any_language = self.shared.scores_any_language
        todo = [i for i in idx if out[i].language in supported or (any_language and out[i].language == UND)]
        for i in sorted(set(idx) - set(todo)):
            if out[i].language == UND:
                out[i].reason = REASON_UND.format(conf=out[i].language_confidence)
            else:
                out[i].reason = REASON_UNSUPPORTED.format(code=out[i].language)
        # 'und' -> None: the global toxicity calibration, not a language's
        pairs = [(clean[i], None if out[i].language == UND else out[i].language) for i in todo]
        results = _run_stage(lambda items: self.shared.analyze([t for t, _ in items], languages=[lang for _, lang in items]), pairs)
        for i, r in zip(todo, results):
            a = out[i]
            error = _err(r) if isinstance(r, Exception) else r.error
            if error:
                a.details.setdefault("errors", {})["shared"] = error
                a.reason = REASON_FAILED.format(error=error)
                continue
            a.sentiment, a.sentiment_label, a.toxicity = r.sentiment, r.sentiment_label, r.toxicity
            a.scores, a.topics = dict(r.scores), list(r.topics)
            a.details.update(r.details)
            a.embedding, a.embedding_model = r.embedding, r.embedding_model
            cov = row_coverage(getattr(self.shared, "coverage", None), a.language)
            if cov is not None:
                a.details["coverage"] = cov

    def _hf_scores(self, out: list[Analysis], idx: list[int], clean: dict[int, str]) -> None:
        todo = [i for i in idx if out[i].language in self.hf.languages]
        results = _run_stage(self.hf.predict, [clean[i] for i in todo])
        for i, r in zip(todo, results):
            a = out[i]
            if isinstance(r, Exception):
                a.details.setdefault("errors", {})["hf"] = _err(r)
                continue
            for task, probs in r.items():
                a.scores[task] = {k: round(v, 6) for k, v in probs.items()}
                if task == "sentiment" and probs:
                    a.sentiment = round(probs.get("positive", 0.0) - probs.get("negative", 0.0), 6)
                    a.sentiment_label = max(probs, key=probs.get)
                elif task == "toxicity" and "toxic" in probs:
                    a.toxicity = round(probs["toxic"], 6)
            a.details["hf_tasks"] = sorted(r)
            if a.reason and a.reason.startswith("language '"):
                a.reason += f" (scores for {', '.join(sorted(r))} from the Hugging Face backend)"

    def _entities(self, out: list[Analysis], idx: list[int], clean: dict[int, str]) -> None:
        texts = [clean[i] for i in idx]
        langs = [out[i].language for i in idx]
        pairs = list(zip(texts, langs))
        results = _run_stage(lambda items: self.entities.extract([t for t, _ in items], [l for _, l in items]), pairs)
        for i, r in zip(idx, results):
            if isinstance(r, Exception):
                out[i].details.setdefault("errors", {})["entities"] = _err(r)
            else:
                out[i].entities = list(r)
                reason = self.entities.reason(out[i].language)
                if reason:
                    out[i].details["entities_reason"] = reason


def _drop_transferred(a: Analysis) -> None:
    """NULL the head groups of ``a`` that are only transferred to its language (a server
    that requires validated languages); the reason names the language and the groups."""
    groups = transferred_groups(a.details.get("coverage"))
    if not groups:
        return
    for g in groups:
        if g == "sentiment":
            a.sentiment = a.sentiment_label = None
        elif g == "toxicity":
            a.toxicity = None
            a.details.pop("toxicity_span", None)
        elif g == "topics":
            a.topics = []
        for head in GROUPS[g]:
            a.scores.pop(head, None)
    a.details["withheld"] = groups
    a.reason = REASON_NOT_VALIDATED.format(code=a.language, groups="/".join(groups))


def package_version() -> str:
    """The installed enrichment-ai version (for reports)."""
    try:
        return metadata.version("enrichment-ai")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "0+unknown"
