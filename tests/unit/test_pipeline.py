"""Enricher: contract (same length/order, never raises), hygiene rules, honest NULLs,
one batched call per analyzer, Hugging Face override, arbitrary Unicode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrichment_ai.pipeline import MODEL_VERSION_MAX, REASON_EMPTY, Enricher
from enrichment_ai.types import Analysis

EN = "Alice Smith moved from Paris to work at Google and she loves it there."
JA = "今日はとても良い天気なので、公園に散歩に行きました。"


def _check_valid(a: Analysis) -> None:
    assert isinstance(a, Analysis)
    assert 0.0 <= a.language_confidence <= 1.0
    if a.sentiment is not None:
        assert -1.0 <= a.sentiment <= 1.0 and a.sentiment_label in {"negative", "neutral", "positive"}
    if a.toxicity is not None:
        assert 0.0 <= a.toxicity <= 1.0
    for probs in a.scores.values():
        assert all(0.0 <= p <= 1.0 for p in probs.values())
    if a.reason is None:
        assert a.sentiment is not None and a.toxicity is not None
    assert a.model_version and len(a.model_version) <= MODEL_VERSION_MAX


def test_english_is_scored_with_entities(enricher):
    (a,) = enricher.enrich_batch([EN])
    _check_valid(a)
    assert a.language == "en" and a.reason is None and not a.skipped
    assert a.sentiment is not None and a.toxicity is not None
    assert {"sentiment", "offensive", "hate"} <= set(a.scores)
    ents = {e.text: e for e in a.entities}
    assert ents["Paris"].label == "GPE" and EN[ents["Paris"].start : ents["Paris"].end] == "Paris"
    assert ents["Google"].label == "ORG"


def test_japanese_is_scored_by_the_multilingual_default_and_marked_transferred(enricher):
    (a,) = enricher.enrich_batch([JA])
    _check_valid(a)
    assert a.language == "ja" and a.reason is None and not a.skipped
    assert a.sentiment is not None and a.toxicity is not None and {"sentiment", "offensive", "emotion"} <= set(a.scores)
    # no labelled Japanese sentiment/toxicity data: transferred, and the row says so
    assert a.details["coverage"]["sentiment"] == "transferred" and a.details["coverage"]["toxicity"] == "transferred"
    assert a.entities == [] and "ja" in a.details["entities_reason"]  # no Japanese NER pipeline by default
    (strict,) = enricher.enrich_batch([JA], validated_only=[True])
    assert strict.sentiment is None and strict.toxicity is None and "'ja'" in strict.reason
    (en,) = enricher.enrich_batch([EN], validated_only=[True])
    assert en.reason is None and en.toxicity is not None and set(en.details["coverage"].values()) == {"validated"}


def test_english_only_configuration_gives_japanese_null_scores_and_a_reason(english_enricher):
    (a,) = english_enricher.enrich_batch([JA])
    assert a.language == "ja"
    assert a.sentiment is None and a.toxicity is None and a.scores == {} and a.entities == []
    assert a.reason == "language 'ja' not supported by sentiment/toxicity heads"
    assert not a.skipped and "coverage" not in a.details


def test_undetermined_language_is_scored_by_the_multilingual_default_only(enricher, english_enricher):
    insult = "shut up loser"  # lingua alone: 'en' at 0.17 among 31 candidates, below min_confidence
    (a,) = enricher.enrich_batch([insult])
    assert a.language == "und" and a.reason is None and a.toxicity is not None and a.sentiment is not None
    assert set(a.details["coverage"].values()) == {"transferred"}
    (strict,) = enricher.enrich_batch([insult], validated_only=[True])
    assert strict.toxicity is None and "'und'" in strict.reason
    (en,) = english_enricher.enrich_batch([insult])  # English heads: a foreign text would be noise
    assert en.language == "und" and en.toxicity is None and "undetermined" in en.reason


def test_bad_inputs_one_batch(enricher):
    long_text = ("This is a long and friendly message about our weekend plans. " * 4000)[:200_000]
    texts = ["", "   \n\t", None, "😂😂😂", "!!! ??? 123", "ok lol", "fine\ud800 thanks, see you at the stadium later", long_text, EN]
    out = enricher.enrich_batch(texts)
    assert len(out) == len(texts)
    for a in out:
        _check_valid(a)
    for a in out[:3]:
        assert a.skipped and a.reason == REASON_EMPTY and a.language == "und"
    for a in out[3:5]:
        assert not a.skipped and a.language == "und" and a.sentiment is None and "no letters" in a.reason
    # too short for language id, not for the multilingual heads: scored, every group transferred
    assert out[5].language == "und" and out[5].reason is None and out[5].toxicity is not None
    assert set(out[5].details["coverage"].values()) == {"transferred"}
    assert out[6].details["replaced_surrogates"] == 1
    assert out[7].details["truncated_from_chars"] == 200_000 and out[7].language == "en"
    assert out[7].toxicity is not None
    assert out[8].language == "en" and out[8].sentiment is not None


def test_order_is_kept(enricher):
    texts = [EN, JA, "", EN]
    out = enricher.enrich_batch(texts)
    assert [a.language for a in out] == ["en", "ja", "und", "en"]
    assert out[0].to_json() == out[3].to_json()


def test_model_version_names_every_analyzer(enricher, english_enricher):
    import hashlib

    for e in (enricher, english_enricher):
        v = e.model_version
        full = "|".join([e.shared.version, e.language.version, e.entities.version, "p2"])
        assert len(v) <= MODEL_VERSION_MAX
        if len(full) <= MODEL_VERSION_MAX:  # every analyzer named in full
            assert v == full
        else:  # the shared analyzer named, the rest a digest of the whole (routed default: two artifacts)
            assert v == f"{e.shared.version[: MODEL_VERSION_MAX - 18]}|{hashlib.sha256(full.encode()).hexdigest()[:16]}"
            assert v.startswith(e.shared.version)


def test_one_batched_call_per_analyzer(enricher, monkeypatch):
    calls: dict[str, list[int]] = {"language": [], "shared": [], "entities": []}

    def spy(name, fn):
        def wrapped(texts, *args, **kw):
            calls[name].append(len(texts))
            return fn(texts, *args, **kw)

        return wrapped

    monkeypatch.setattr(enricher.language, "detect", spy("language", enricher.language.detect))
    monkeypatch.setattr(enricher.shared, "analyze", spy("shared", enricher.shared.analyze))
    monkeypatch.setattr(enricher.entities, "extract", spy("entities", enricher.entities.extract))
    enricher.enrich_batch([EN, JA, "", "😂", EN, "Guten Morgen, wie geht es dir heute?", EN])
    assert calls == {"language": [5], "shared": [5], "entities": [5]}  # every covered language: one shared call


def test_one_failing_text_does_not_sink_the_batch(enricher, monkeypatch):
    real = enricher.shared.analyze

    def flaky(texts, *a, **kw):
        if any("POISON" in t for t in texts):
            raise RuntimeError("poisoned")
        return real(texts, *a, **kw)

    monkeypatch.setattr(enricher.shared, "analyze", flaky)
    out = enricher.enrich_batch([EN, "This POISON message breaks the model somehow.", EN])
    assert out[0].sentiment is not None and out[2].sentiment is not None
    assert out[1].sentiment is None and out[1].reason.startswith("analysis failed")
    assert "poisoned" in out[1].details["errors"]["shared"]


def test_embed(enricher):
    v = enricher.embed([EN, JA, ""])
    assert v.shape[0] == 3
    assert np.allclose(np.linalg.norm(v[:2], axis=1), 1.0, atol=1e-4)


def test_not_loaded_raises(analysis_settings):
    with pytest.raises(RuntimeError):
        Enricher(analysis_settings).enrich_batch(["hi"])


def test_hf_backend_replaces_sentiment(tiny_hf_checkpoint, enricher):
    from enrichment_ai.config import Settings

    path, *_ = tiny_hf_checkpoint
    labels = {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}
    e = Enricher(Settings(device="cpu", hf_models={"sentiment": str(path)}, hf_label_maps={"sentiment": labels})).load()
    # the hf checkpoint is part of the version (spelled out, or in the digest of a long one)
    assert "|hf-" in e.model_version or e.model_version != enricher.model_version
    direct = e.hf.predict([EN])[0]["sentiment"]
    a, ja = e.enrich_batch([EN, JA])
    assert a.scores["sentiment"] == pytest.approx(direct, abs=1e-6)
    assert a.sentiment == pytest.approx(direct["positive"] - direct["negative"], abs=1e-5)
    assert a.sentiment_label == max(direct, key=direct.get)
    assert "offensive" in a.scores  # other heads still come from the shared encoder
    assert "hf_tasks" not in ja.details and "hf_tasks" in a.details  # hf_languages = ["en"]: ja keeps the shared heads
    assert ja.scores["sentiment"] != pytest.approx(e.hf.predict([JA])[0]["sentiment"], abs=1e-6)


unicode_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=10),
    st.text(alphabet=st.sampled_from(list("😂👍ab cdé Paris日本語яж\n\x00\x07")), max_size=80),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(10_000, 60_000)),
    st.none(),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(unicode_text, max_size=5))
def test_property_never_raises_same_length(enricher, texts):
    out = enricher.enrich_batch(texts)
    assert len(out) == len(texts)
    for text, a in zip(texts, out):
        _check_valid(a)
        if text is None or not text.strip():
            assert a.skipped


def test_hints_are_optional_and_used_only_where_text_is_ambiguous(enricher):
    from enrichment_ai.analysis.language_prior import LanguageHint

    texts = ["same here", "Das Wetter ist heute wirklich schön und warm.", "😂"]
    en = LanguageHint(server_locale="en-US", author_locale="en-US", channel_languages=("en", "en"))
    alone = enricher.enrich_batch(texts)
    hinted = enricher.enrich_batch(texts, [en, en, en])
    assert alone[0].language == "und" and alone[0].details["coverage"]["toxicity"] == "transferred"
    assert hinted[0].language == "en" and hinted[0].details["language_source"] == "prior"
    # an English text now gets English scores: validated, English toxicity calibration
    assert hinted[0].sentiment is not None and hinted[0].details["coverage"]["toxicity"] == "validated"
    assert hinted[1].language == "de" and "language_source" not in hinted[1].details
    assert hinted[2].language == "und"
    assert enricher.enrich_batch(texts, [None, None, None])[0].language == "und"
    with pytest.raises(ValueError):
        enricher.enrich_batch(texts, [en])


def test_entities_routed_by_language_with_a_reason_elsewhere(enricher):
    fr, de = enricher.enrich_batch([
        "Emmanuel Macron a rencontré les dirigeants de Renault à Paris mardi.",
        "Angela Merkel hat gestern in Berlin mit Vertretern von Siemens gesprochen.",
    ])  # fmt: skip
    assert fr.language == "fr" and "Emmanuel Macron" in {e.text for e in fr.entities}
    assert "entities_reason" not in fr.details
    assert de.language == "de" and de.entities == []
    assert de.details["entities_reason"].startswith("no entity pipeline for language 'de'")


def test_a_text_whose_only_letters_are_links_mentions_or_custom_emoji_is_not_scored(enricher):
    """A bare link's slug or a handle is not the author's words: no scores, so no alert
    ("…/you-are-a-stupid-idiot" alone scored 0.99 toxicity); with words around it, scored."""
    texts = ["https://example.com/you-are-a-stupid-idiot", "@dumbass_loser", "<:kekw:123456789012345678>",
             ":rage: :middle_finger:", "you are a stupid idiot https://example.com"]
    out = enricher.enrich_batch(texts)
    for a in out[:4]:
        assert a.toxicity is None and a.sentiment is None and "no letters" in a.reason
    assert out[4].toxicity is not None and out[4].toxicity > 0.5


def test_entity_and_span_offsets_point_into_the_message_text_despite_control_characters(enricher):
    """Control characters become spaces, one-for-one: offsets index the message as stored."""
    raw = "\x07Barack Obama visited Paris with\x00Emmanuel Macron. You are a stupid worthless idiot."
    (a,) = enricher.enrich_batch([raw])
    assert a.entities, a
    for e in a.entities:
        assert raw[e.start:e.end] == e.text
    span = a.details.get("toxicity_span")
    if span:
        assert raw[span["start"]:span["end"]] == span["text"]
