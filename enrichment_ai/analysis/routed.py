"""English through the English artifact, every other language through the multilingual one.

The default shared encoder (multilingual-e5-small with ``models/multilingual-heads``)
scores every language, but on English — most of a global chat stream — it is both
weaker and slower than the English artifact (all-MiniLM-L6-v2 with
``models/tweeteval-heads``): val offensive 75.4 / hate 73.4 / emotion 67.1 / irony 63.1
against 77.1 / 77.1 / 71.6 / 66.7, at half the layers per token (docs/models.md,
"English through the English artifact"). :class:`RoutedAnalyzer` therefore sends each
text to one of the two by its detected language (``en``, from the text or from the
platform prior → English artifact; every other language and ``und`` → multilingual):
still **one encoder pass per message**, the English heads' quality on English, and the
multilingual coverage everywhere else.

It has :class:`~enrichment_ai.analysis.shared.SharedEncoderAnalyzer`'s interface
(``load``, ``analyze``, ``embed``, ``languages``, ``scores_any_language``,
``coverage``, ``version``), so the pipeline does not care which one it holds.
Every result names the embedding space of its vector (``SharedResult.embedding_model``):
stored embeddings are read per space, and summaries compare messages within a space only
(:func:`enrichment_ai.summarizers.mmr_select`). :meth:`embed` (texts with no stored
vector) always uses the multilingual encoder, which covers every language.

Routing is on when ``Settings.route_english`` is set, the configured artifact is
multilingual (its card has a ``coverage`` block with more than English) and
``Settings.english_heads_path`` is another artifact (:func:`routes_english`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from enrichment_ai.analysis.artifact import read_card
from enrichment_ai.analysis.shared import SharedEncoderAnalyzer, SharedResult

if TYPE_CHECKING:  # pragma: no cover
    from enrichment_ai.analysis.topics import CustomTopics
    from enrichment_ai.config import Settings

#: languages sent to the English artifact
ENGLISH = frozenset({"en"})


def _is_multilingual(heads_path: Path) -> bool:
    coverage = read_card(Path(heads_path)).get("coverage") or {}
    return len(coverage.get("languages") or {}) > 1


def routes_english(settings: "Settings") -> bool:
    """True when English text goes to the English artifact (module docstring). Reads the
    artifacts' cards only (no model)."""
    if not settings.route_english:
        return False
    primary, english = Path(settings.heads_path), Path(settings.english_heads_path)
    if primary.resolve() == english.resolve() or not (english / "heads.safetensors").is_file():
        return False
    return _is_multilingual(primary) and not _is_multilingual(english)


def english_settings(settings: "Settings") -> "Settings":
    """The settings of the English artifact: its heads, and the encoder its card names."""
    from enrichment_ai.config import MINILM_NAMES

    base = read_card(Path(settings.english_heads_path)).get("base_encoder")
    encoder = None if base is None or base in MINILM_NAMES else base
    return settings.model_copy(update={"encoder": encoder, "heads_path": Path(settings.english_heads_path)})


def embedding_ids(settings: "Settings") -> tuple[str, ...]:
    """Every embedding space the analysis pass stores vectors in under ``settings``; the
    first is the one :meth:`RoutedAnalyzer.embed` (and a plain analyzer's ``embed``) uses."""
    from enrichment_ai.analysis.shared import embedding_id

    primary = embedding_id(settings)
    return (primary, embedding_id(english_settings(settings))) if routes_english(settings) else (primary,)


class RoutedAnalyzer:
    """Two shared-encoder analyzers behind one interface; see the module docstring."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.primary = SharedEncoderAnalyzer(settings)
        self.english = SharedEncoderAnalyzer(english_settings(settings))
        self.languages: frozenset[str] = frozenset()
        self.scores_any_language = False
        self.coverage: dict | None = None
        self.artifacts: dict[bool, str] = {}
        self._version: str | None = None

    def load(self) -> "RoutedAnalyzer":
        self.primary.load()
        self.english.load()
        self.languages = self.primary.languages | self.english.languages
        self.scores_any_language = self.primary.scores_any_language
        self.coverage = self._coverage()
        #: which artifact scored a row (``details["artifact"]``): routed to English or not
        self.artifacts = {to_english: str(read_card(a.heads_path).get("name") or a.heads_path.name)
                          for to_english, a in ((True, self.english), (False, self.primary))}
        # the English artifact by family and digest (its encoder follows from its card): the
        # whole stays short enough to survive the pipeline's 128-character model_version
        self._version = f"{self.primary.version}+en:{self.english.version.rsplit('+', 1)[-1]}"
        return self

    def _coverage(self) -> dict | None:
        """The multilingual artifact's coverage, English's evidence naming the English artifact."""
        coverage = copy.deepcopy(self.primary.coverage)
        if coverage:
            card = read_card(self.english.heads_path)
            metrics = card.get("val_metrics_at_train") or {}
            shown = ", ".join(f"{k} {100 * float(v['value']):.1f}" for k, v in sorted(metrics.items()))
            coverage.setdefault("evidence", {}).setdefault("en", {})["all"] = (
                f"English artifact {card.get('name', self.english.heads_path.name)} "
                f"({card.get('base_encoder', 'all-MiniLM-L6-v2')}): TweetEval val {shown}")
            coverage["routed"] = {"en": str(card.get("name") or self.english.heads_path.name)}
        return coverage

    @property
    def version(self) -> str:
        if self._version is None:
            raise RuntimeError("RoutedAnalyzer.load() must be called first")
        return self._version

    @property
    def embedding_model(self) -> str:
        """The space :meth:`embed` returns vectors in (the multilingual encoder's)."""
        return self.primary.embedding_model

    @property
    def embedding_models(self) -> tuple[str, ...]:
        """Every space a result's vector may be in."""
        return (self.primary.embedding_model, self.english.embedding_model)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Multilingual embeddings (every language; see the module docstring)."""
        return self.primary.embed(texts)

    def analyze(self, texts: list[str], custom_topics: "CustomTopics | None" = None,
                languages: "list[str | None] | None" = None) -> list[SharedResult]:
        """One result per text, in order: each text through one artifact, by its language
        (one ``analyze`` call per artifact that has texts). With ``custom_topics`` every
        text goes through the multilingual artifact: the labels' descriptions were
        embedded in its space (``CustomTopics.from_descriptions(analyzer.embed, ...)``)."""
        texts = list(texts)
        langs = list(languages) if languages is not None else [None] * len(texts)
        route: dict[bool, list[int]] = {True: [], False: []}
        for i, lang in enumerate(langs):
            route[custom_topics is None and lang in ENGLISH].append(i)
        out: list[Any] = [None] * len(texts)
        for to_english, idx in route.items():
            if not idx:
                continue
            analyzer = self.english if to_english else self.primary
            results = analyzer.analyze([texts[i] for i in idx], custom_topics, [langs[i] for i in idx])
            for i, r in zip(idx, results):
                r.details["artifact"] = self.artifacts[to_english]
                out[i] = r
        return out
