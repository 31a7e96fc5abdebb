"""The e2e benchmark's workload and statistics (no services): the mix has the shares
the benchmark claims, with or without the shared datasets, and the percentiles are
the usual ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.e2e import percentiles
from bench.e2e_mix import CHAT, EXPLICIT, EXPLICIT_EVERY, LONG_PARTS, OTHER, message_mix


def test_builtin_mix_has_the_documented_shares(tmp_path: Path) -> None:
    texts = message_mix(4000, datasets=tmp_path / "absent")  # built-in lists only
    other = {t for ts in OTHER.values() for t in ts}
    share_other = sum(t in other for t in texts) / len(texts)
    assert 0.17 < share_other < 0.23
    assert len({t for t in texts if t in other}) > 20  # many languages, not one sentence
    assert all(texts[i] in EXPLICIT for i in range(2, len(texts), EXPLICIT_EVERY))
    assert any(len(t) > 500 and t.split(".")[0] + "." in LONG_PARTS for t in texts)  # long posts
    assert any(t in CHAT and ("http" in t or "@" in t) for t in texts)
    assert message_mix(50, datasets=tmp_path) == message_mix(50, datasets=tmp_path)  # reproducible


def test_mix_draws_tweets_from_the_datasets_when_present(tmp_path: Path) -> None:
    d = tmp_path / "tweeteval" / "sentiment"
    d.mkdir(parents=True)
    (d / "train_text.txt").write_text("\n".join(f"tweet number {i} @user" for i in range(100)), encoding="utf-8")
    texts = message_mix(500, datasets=tmp_path)
    assert sum(t.startswith("tweet number") for t in texts) > 200


def test_the_distinct_stream_repeats_no_text_until_its_pools_are_used_up(tmp_path: Path) -> None:
    for task, n in (("sentiment", 300), ("irony", 200)):  # every task's train tweets, not only sentiment's
        d = tmp_path / "tweeteval" / task
        d.mkdir(parents=True)
        (d / "train_text.txt").write_text("\n".join(f"{task} tweet {i}" for i in range(n)), encoding="utf-8")
    u = tmp_path / "multilingual" / "umsab" / "german"
    u.mkdir(parents=True)
    (u / "train_text.txt").write_text("\n".join(f"deutscher Tweet {i}" for i in range(50)), encoding="utf-8")
    texts = message_mix(600, datasets=tmp_path, distinct=True)
    tweets = [t for t in texts if " tweet " in t]
    assert len(tweets) == len(set(tweets)) > 300  # none repeated, and from both tasks' files
    assert {t.split()[0] for t in tweets} == {"sentiment", "irony"}
    assert any(t.startswith("deutscher Tweet") for t in texts)  # UMSAB's train tweets join the other languages
    assert all(texts[i] in EXPLICIT for i in range(2, len(texts), EXPLICIT_EVERY))  # the same shape as the mix
    longer = [t for t in message_mix(3000, datasets=tmp_path, distinct=True) if " tweet " in t]
    assert len(set(longer)) == 500 < len(longer)  # past the pool: every tweet used, then again


def test_percentiles() -> None:
    assert percentiles([]) is None
    assert percentiles([0.2]) == (0.2, 0.2, 0.2)
    p50, p95, p99 = percentiles([float(i) for i in range(1, 101)])
    assert p50 == pytest.approx(50.5) and p95 == pytest.approx(95.05) and p99 == pytest.approx(99.01)
