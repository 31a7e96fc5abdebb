"""Language identification: clear sentences, chat noise -> und, arbitrary Unicode."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrichment_ai.analysis.language import UND, LangdetectDetector, LanguageGuess, LinguaDetector
from enrichment_ai.analysis.text import letter_weight, sanitize, strip_chat_noise

CLEAR = [
    ("The weather is lovely today and we are going to the park together.", "en"),
    ("Mañana vamos a la playa con mis amigos si no llueve.", "es"),
    ("Je pense que nous devrions partir plus tôt demain matin.", "fr"),
    ("Ich habe heute keine Zeit, weil ich arbeiten muss.", "de"),
    ("今日はとても良い天気なので、公園に散歩に行きました。", "ja"),
    ("Сегодня мы идём в кино с друзьями после работы.", "ru"),
]
NOISE = ["ok lol", "😂", "hmm", "12345", "https://example.com/a/b", "gg", "", "   ", "<@1234567>"]


@pytest.mark.parametrize("which", ["lingua_detector", "langdetect_detector"])
def test_clear_sentences(request, which):
    det = request.getfixturevalue(which)
    got = det.detect([t for t, _ in CLEAR])
    assert [g.code for g in got] == [code for _, code in CLEAR]
    assert all(g.confidence >= det.min_confidence for g in got)


@pytest.mark.parametrize("which", ["lingua_detector", "langdetect_detector"])
def test_chat_noise_is_und_with_low_confidence(request, which):
    det = request.getfixturevalue(which)
    got = det.detect(NOISE)
    assert [g.code for g in got] == [UND] * len(NOISE)
    assert all(g.confidence < 0.5 for g in got)


def test_min_confidence_rule_is_applied(analysis_settings):
    # The same detector with both rules off guesses a language for "ok lol".
    raw = LinguaDetector(analysis_settings, min_confidence=0.0, min_letters=0).load()
    assert raw.detect(["ok lol"])[0].code != UND
    strict = LinguaDetector(analysis_settings, min_confidence=0.99, min_letters=0).load()
    assert strict.detect(["Hola, ¿cómo estás?"])[0].code == UND


def test_not_loaded_raises(analysis_settings):
    with pytest.raises(RuntimeError):
        LinguaDetector(analysis_settings).detect(["hello"])


def test_unknown_candidate_is_a_clear_error():
    from enrichment_ai.config import Settings

    with pytest.raises(ValueError, match="xx"):
        LangdetectDetector(Settings(language_candidates=["en", "xx"])).load()


def test_version_names_library_mode_and_rules(lingua_detector):
    assert lingua_detector.version.startswith("lingua2.") and "-high-" in lingua_detector.version


def test_text_helpers():
    assert letter_weight("😂 12345 !!") == 0
    assert letter_weight("ok lol") == 5
    assert letter_weight("你好") == 6
    assert strip_chat_noise("see https://x.io/a <@123> @bob now") == "see now"
    assert strip_chat_noise("mail bob@example.com or a@a@a@a now") == "mail or a now"  # "@a": mentions
    s = sanitize("a\ud800b\x00c" + "d" * 10, max_chars=5)
    assert s.text == "a\ufffdb c" and s.notes == {
        "replaced_surrogates": 1, "removed_control_chars": 1, "truncated_from_chars": 15,
    }  # fmt: skip


unicode_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=20),
    st.text(alphabet=st.sampled_from(list("😂👍🔥ab ökяж日本\n\t\x00")), max_size=50),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=5), st.integers(1000, 50_000)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(unicode_text, max_size=6))
def test_property_any_unicode(lingua_detector, langdetect_detector, texts):
    for det in (lingua_detector, langdetect_detector):
        got = det.detect(texts)
        assert len(got) == len(texts)
        for g in got:
            assert isinstance(g, LanguageGuess)
            assert 0.0 <= g.confidence <= 1.0
            assert g.code == UND or g.code in det.candidates


def test_safe_str_keeps_offsets_with_surrogates_and_controls():
    from enrichment_ai.analysis.text import safe_str

    raw = "a\x01b\ud800c Paris"
    out = safe_str(raw)
    assert len(out) == len(raw)
    assert out == "a\x01b\ufffdc Paris"
    assert out.index("Paris") == raw.index("Paris")


# --- the platform prior -----------------------------------------------------------------
from enrichment_ai.analysis.language_prior import LanguageHint, combine, locale_language, prior  # noqa: E402

EN = LanguageHint(server_locale="en-US", author_locale="en-US")


def test_locale_language():
    assert [locale_language(x) for x in ("pt-BR", "en_US", "no", "nb-NO", "zh-CN", "iw", "und", "", None, "x-1")] == [
        "pt", "en", "nb", "nb", "zh", "he", None, None, None, None]  # fmt: skip


def test_prior_weights_and_candidates():
    assert prior(None, ["en"]) == {} and prior(LanguageHint(), ["en"]) == {}
    p = prior(LanguageHint(server_locale="fr", author_locale="pt-BR", channel_languages=("es", "es", "und", "xx")), ["es", "fr", "pt"])
    assert p == pytest.approx({"es": 0.5, "pt": 0.3, "fr": 0.2})
    assert prior(LanguageHint(author_locale="sw"), ["en"]) == {}  # not a candidate: no prior
    assert combine({"en": 0.2, "de": 0.8}, {"en": 1.0}, 2, 0.0) == pytest.approx({"en": 0.2, "de": 0.8})


def test_prior_decides_short_ambiguous_text(lingua_detector):
    texts = ["same here", "me too", "ok merci"]
    alone = lingua_detector.detect(texts)
    assert [g.code for g in alone] == [UND] * 3
    hinted = lingua_detector.detect(texts, [EN, EN, LanguageHint(server_locale="fr", channel_languages=("fr",))])
    assert [(g.code, g.source) for g in hinted] == [("en", "prior"), ("en", "prior"), ("fr", "prior")]
    assert all(lingua_detector.min_confidence <= g.confidence <= 1 for g in hinted)


def test_wrong_prior_does_not_override_confident_text(lingua_detector, langdetect_detector):
    for det in (lingua_detector, langdetect_detector):
        got = det.detect([t for t, _ in CLEAR], [EN] * len(CLEAR))
        assert [g.code for g in got] == [code for _, code in CLEAR]
        assert all(g.source == "text" for g in got)


def test_prior_needs_the_text_to_find_its_language_plausible(lingua_detector):
    # "danke dir" reads German (or Dutch/Norwegian), not English: an en-US hint leaves it und
    got = lingua_detector.detect(["danke dir", "ja klar", "😂", "ok", "привет"], [EN] * 5)
    assert [g.code for g in got] == [UND, UND, UND, UND, "ru"]


def test_hints_must_match_texts(lingua_detector):
    with pytest.raises(ValueError, match="hints"):
        lingua_detector.detect(["a", "b"], [EN])


def test_default_candidates_cover_the_web_top_30():
    from enrichment_ai.config import WEB_LANGUAGES, Settings

    assert len(set(Settings().language_candidates)) >= 30
    assert {"uk", "hi", "id", "sv", "vi"} <= set(WEB_LANGUAGES)


def test_ukrainian_is_not_russian(lingua_detector):
    assert lingua_detector.detect(["Привіт, як у тебе справи сьогодні?"])[0].code == "uk"
