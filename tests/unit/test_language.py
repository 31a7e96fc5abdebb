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
    s = sanitize("a\ud800b\x00c" + "d" * 10, max_chars=5)
    assert s.text == "a\ufffdbcd" and s.notes == {
        "replaced_surrogates": 1, "removed_control_chars": 1, "truncated_from_chars": 14,
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
