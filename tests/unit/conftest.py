"""Unit-test fixtures: heavy models load once per test session (no services needed)."""

from __future__ import annotations

import pytest

from enrichment_ai.config import Settings


@pytest.fixture(scope="session")
def analysis_settings() -> Settings:
    """Default settings (no database/broker needed for the analysis path)."""
    return Settings(device="cpu")


@pytest.fixture(scope="session")
def lingua_detector(analysis_settings):
    from enrichment_ai.analysis.language import LinguaDetector

    return LinguaDetector(analysis_settings).load()


@pytest.fixture(scope="session")
def langdetect_detector(analysis_settings):
    from enrichment_ai.analysis.language import LangdetectDetector

    return LangdetectDetector(analysis_settings).load()


@pytest.fixture(scope="session")
def spacy_entities(analysis_settings):
    from enrichment_ai.analysis.entities import SpacyEntities

    return SpacyEntities(analysis_settings).load()


@pytest.fixture(scope="session")
def enricher(analysis_settings):
    """The real pipeline: lingua + shared encoder and shipped heads + spaCy."""
    from enrichment_ai.pipeline import Enricher

    return Enricher(analysis_settings).load()
