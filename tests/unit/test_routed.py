"""English through the English artifact, every other language through the multilingual one
(analysis/routed.py): one encoder pass per message, each row says which artifact and
which embedding space."""

from __future__ import annotations

from enrichment_ai.analysis.routed import RoutedAnalyzer, embedding_ids, english_settings, routes_english
from enrichment_ai.analysis.shared import SharedEncoderAnalyzer, embedding_id
from enrichment_ai.config import ENGLISH_HEADS, Settings
from enrichment_ai.pipeline import Enricher

EN = "You are a pathetic idiot and nobody wants you here."
DE = "Halt die Klappe, du dummer Idiot. Niemand will dich hier."


def test_routing_is_the_default_with_the_multilingual_artifact(analysis_settings):
    assert routes_english(analysis_settings)
    assert isinstance(Enricher(analysis_settings).shared, RoutedAnalyzer)
    off = analysis_settings.model_copy(update={"route_english": False})
    assert not routes_english(off) and isinstance(Enricher(off).shared, SharedEncoderAnalyzer)
    english_only = Settings(device="cpu", encoder="all-MiniLM-L6-v2")  # nothing to route to
    assert not routes_english(english_only) and isinstance(Enricher(english_only).shared, SharedEncoderAnalyzer)
    # the English artifact's encoder comes from its card (all-MiniLM-L6-v2 = the packaged default)
    en = english_settings(analysis_settings)
    assert en.encoder is None and en.heads_path == ENGLISH_HEADS
    assert embedding_ids(analysis_settings) == (embedding_id(analysis_settings), embedding_id(en))
    assert embedding_ids(off) == (embedding_id(off),)


def test_each_text_goes_through_one_artifact_by_language(enricher, english_enricher):
    en, de, und = enricher.enrich_batch([EN, DE, "ok lol"])
    (en_alone,) = english_enricher.enrich_batch([EN])
    # English: exactly the English artifact's scores, its space, validated everywhere
    assert en.language == "en" and en.scores == en_alone.scores and en.toxicity == en_alone.toxicity
    assert en.embedding_model == english_enricher.embedding_model
    assert en.details["artifact"] == "tweeteval-heads" and set(en.details["coverage"].values()) == {"validated"}
    # German and undetermined text: the multilingual artifact, whose space embed() uses. The
    # same batch as the router's call: under bf16 (AMX) a text's scores move in the 4th
    # decimal with what it is padded beside, so only the same call is bit-for-bit the same
    de_ml, _ = enricher.shared.primary.analyze([DE, "ok lol"], languages=["de", und.language])
    assert de.language == "de" and de.scores == de_ml.scores and de.details["artifact"] == "multilingual-heads"
    assert de.embedding_model == und.embedding_model == enricher.embedding_model != en.embedding_model
    assert und.language == "und" and und.toxicity is not None and und.details["artifact"] == "multilingual-heads"
    # the row JSON carries neither the vector nor its space
    assert "embedding_model" not in en.to_json() and "embedding" not in en.to_json()


def test_one_call_per_artifact_and_the_version_names_both(enricher, monkeypatch):
    calls = []
    for name in ("primary", "english"):
        analyzer = getattr(enricher.shared, name)
        real = analyzer.analyze
        monkeypatch.setattr(analyzer, "analyze", lambda t, *a, _n=name, _r=real, **k: calls.append((_n, len(t))) or _r(t, *a, **k))
    enricher.enrich_batch([EN, DE, EN, "Bonjour tout le monde, comment allez-vous ?", EN])
    assert sorted(calls) == [("english", 3), ("primary", 2)]
    v = enricher.shared.version
    assert enricher.shared.primary.version in v and "tweeteval" in v and v in enricher.model_version


def test_custom_topics_keep_every_text_in_the_space_they_were_embedded_in(enricher):
    from enrichment_ai.analysis.topics import CustomTopics

    topics = CustomTopics.from_descriptions(enricher.shared.embed, {"gaming": "video games, raids, matches"})
    (r,) = enricher.shared.analyze(["the raid tonight was a great match"], custom_topics=topics, languages=["en"])
    assert r.embedding_model == enricher.embedding_model and r.details["artifact"] == "multilingual-heads"
