"""Analyzer registry: explicit names, helpful error for unknown ones."""

from __future__ import annotations

import pytest

from enrichment_ai.analysis import registry


def test_known_names():
    assert registry.known() == sorted(
        ["language.lingua.v1", "language.langdetect.v1", "entities.spacy.v1", "shared.minilm.v1", "shared.routed.v1",
         "hf.v1"]
    )


def test_unknown_name_lists_known(analysis_settings):
    with pytest.raises(registry.UnknownAnalyzerError) as err:
        registry.create("sentiment.magic.v9", analysis_settings)
    msg = str(err.value)
    assert "sentiment.magic.v9" in msg
    for name in registry.known():
        assert name in msg


def test_create_is_cheap_and_typed(analysis_settings):
    from enrichment_ai.analysis.entities import SpacyEntities
    from enrichment_ai.analysis.language import LangdetectDetector, LinguaDetector

    assert isinstance(registry.create("language.lingua.v1", analysis_settings), LinguaDetector)
    assert isinstance(registry.create("language.langdetect.v1", analysis_settings), LangdetectDetector)
    ents = registry.create("entities.spacy.v1", analysis_settings)
    assert isinstance(ents, SpacyEntities) and ents._nlps == {}  # constructed, not loaded
