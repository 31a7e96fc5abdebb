"""Analyzer registry: a plain dict of versioned names -> factories ``(settings) -> analyzer``.

Filled explicitly here (no decorators, nothing registers itself at import). Factories
import their module lazily, so looking a name up loads no model and no heavy library.
Every factory returns an analyzer that is constructed but not loaded: call ``load()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enrichment_ai.config import Settings

ERR_UNKNOWN = "unknown analyzer {name!r}; known analyzers: {known}"


class UnknownAnalyzerError(LookupError):
    """A name that is not in :data:`ANALYZERS` (the message lists the known names)."""


def _lingua(settings: Settings) -> Any:
    from enrichment_ai.analysis.language import LinguaDetector

    return LinguaDetector(settings)


def _langdetect(settings: Settings) -> Any:
    from enrichment_ai.analysis.language import LangdetectDetector

    return LangdetectDetector(settings)


def _spacy(settings: Settings) -> Any:
    from enrichment_ai.analysis.entities import SpacyEntities

    return SpacyEntities(settings)


def _shared(settings: Settings) -> Any:
    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer

    return SharedEncoderAnalyzer(settings)


def _routed(settings: Settings) -> Any:
    from enrichment_ai.analysis.routed import RoutedAnalyzer

    return RoutedAnalyzer(settings)


def _hf(settings: Settings) -> Any:
    from enrichment_ai.analysis.hf import HFBackend

    return HFBackend(settings)


#: name -> factory. Bump the suffix when an analyzer's behaviour changes incompatibly.
ANALYZERS: dict[str, Callable[[Settings], Any]] = {
    "language.lingua.v1": _lingua,
    "language.langdetect.v1": _langdetect,
    "entities.spacy.v1": _spacy,
    "shared.minilm.v1": _shared,
    "shared.routed.v1": _routed,
    "hf.v1": _hf,
}

#: Settings.language_detector value -> registry name.
LANGUAGE_DETECTORS = {"lingua": "language.lingua.v1", "langdetect": "language.langdetect.v1"}


def known() -> list[str]:
    """Registered names, sorted."""
    return sorted(ANALYZERS)


def create(name: str, settings: Settings) -> Any:
    """Build (not load) the analyzer registered as ``name``; unknown names list the known."""
    try:
        factory = ANALYZERS[name]
    except KeyError:
        raise UnknownAnalyzerError(ERR_UNKNOWN.format(name=name, known=", ".join(known()))) from None
    return factory(settings)
