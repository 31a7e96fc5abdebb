"""Conversation summaries on real PostgreSQL: triggers, idempotency, skips, masking."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from enrichment_ai import db
from enrichment_ai.summaries import channels_due, quiet_channels_due, summarize_channel
from enrichment_ai.summarizers import MASK, SMALL_TALK

pytestmark = pytest.mark.integration

TOPIC = [
    "The release build fails because the database migration locks the messages table",
    "We could split the database migration into smaller batches during the night",
    "Batching the migration sounds right, the messages table has forty million rows",
    "I will write the batched migration script and test it on staging tomorrow",
    "Staging restore from last night's backup is ready for the migration test",
]


class BagEmbedder:
    """Deterministic bag-of-words embeddings (no model download in tests)."""

    def embed(self, texts):
        out = np.zeros((len(texts), 128), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 128] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def cfg(settings):
    return settings.model_copy(update={"summary_min_messages": 5, "summary_min_interval_s": 0, "summary_quiet_s": 900,
                                       "summary_min_quiet_messages": 3, "skip_bots": True})


@pytest.fixture
def chan(factory, conn):
    s = factory.server()
    c = factory.channel(s)
    users = {n: factory.user(name=f"{n}{c.hex[:8]}") for n in ("alice", "bob", "carol")}
    return s, c, users


def post(factory, conn, channel, author, text, created, toxicity=0.1, analysed=True):
    mid = factory.message(channel, author, text, created_at=created)
    if analysed:
        conn.execute(
            "INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score, model_version)"
            " VALUES (%s, %s, 0.1, %s, 'test.v1')",
            (mid, created, toxicity),
        )
    return mid


def rows(conn, channel):
    return conn.execute(
        "SELECT id, start_message_id, end_message_id, summary, key_points, key_point_message_ids, participants,"
        " message_count FROM conversation_summaries WHERE channel_id = %s ORDER BY end_at",
        (channel,),
    ).fetchall()


def now():
    return datetime.now(timezone.utc)


def test_trigger_by_count(conn, factory, chan, cfg):
    _, c, u = chan
    names = list(u.values())
    ids = [post(factory, conn, c, names[i % 3], TOPIC[i], now() - timedelta(seconds=60 - i)) for i in range(4)]
    post(factory, conn, c, names[0], TOPIC[4], now(), analysed=False)  # not analysed: not counted
    assert channels_due(conn, [c], cfg) == []
    assert summarize_channel(conn, c, BagEmbedder(), cfg) is None
    ids.append(post(factory, conn, c, names[1], TOPIC[4], now()))
    assert channels_due(conn, [c, c], cfg) == [c]
    sid = summarize_channel(conn, c, BagEmbedder(), cfg)
    assert sid is not None
    (row,) = rows(conn, c)
    # it ends before the message still waiting for its analysis (the next window opens there)
    assert row[1] == ids[0] and row[2] == ids[3] and row[7] == 4
    assert set(row[6]) == set(names)
    assert channels_due(conn, [c], cfg) == []  # the window is consumed


def test_trigger_by_quiet(conn, factory, chan, cfg):
    _, c, u = chan
    old = now() - timedelta(minutes=20)
    post(factory, conn, c, u["alice"], TOPIC[0], old)
    post(factory, conn, c, u["bob"], TOPIC[1], old + timedelta(seconds=1))
    assert channels_due(conn, [c], cfg) == []  # 2 < summary_min_quiet_messages
    post(factory, conn, c, u["carol"], TOPIC[2], old + timedelta(seconds=2))
    assert channels_due(conn, [c], cfg) == [c]
    assert c in quiet_channels_due(conn, cfg)
    post(factory, conn, c, u["carol"], TOPIC[3], now())  # activity again: not quiet any more
    assert channels_due(conn, [c], cfg) == []
    assert c not in quiet_channels_due(conn, cfg)


def test_same_window_twice_one_row(conn, factory, chan, cfg, migrated_db):
    _, c, u = chan
    for i in range(5):
        post(factory, conn, c, u["alice"] if i % 2 else u["bob"], TOPIC[i], now() - timedelta(seconds=10 - i))
    results: list = []

    def go():
        with db.connect(migrated_db) as c2:
            results.append(summarize_channel(c2, c, BagEmbedder(), cfg))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3 and sum(r is not None for r in results) == 1
    assert summarize_channel(conn, c, BagEmbedder(), cfg) is None
    assert summarize_channel(conn, c, BagEmbedder(), cfg, force=True) is None  # nothing new
    assert len(rows(conn, c)) == 1


def test_small_talk_says_so(conn, factory, chan, cfg):
    _, c, u = chan
    for i, t in enumerate(["hi", "hey all", "lol", "good morning!", "haha yes", "+1"]):
        post(factory, conn, c, list(u.values())[i % 3], t, now() - timedelta(seconds=10 - i))
    assert summarize_channel(conn, c, BagEmbedder(), cfg) is not None
    (row,) = rows(conn, c)
    assert row[3].startswith(SMALL_TALK)
    assert row[4] == [] and row[5] == [] and row[7] == 6


def test_key_points_link_to_messages_and_toxic_is_masked(conn, factory, chan, cfg):
    s, c, u = chan
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, 0.5)", (s,))
    texts = {}
    for i, t in enumerate(TOPIC):
        texts[post(factory, conn, c, u["alice"] if i % 2 else u["bob"], t, now() - timedelta(seconds=30 - i))] = t
    toxic = "The database migration idea is garbage and you are a useless moron for suggesting the migration"
    tid = post(factory, conn, c, u["carol"], toxic, now() - timedelta(seconds=5), toxicity=0.6)
    assert summarize_channel(conn, c, BagEmbedder(), cfg) is not None
    (row,) = rows(conn, c)
    _, _, _, summary, points, point_ids, _, count = row
    assert count == 6 and points and len(points) == len(point_ids)
    names = {u["alice"]: f"alice{c.hex[:8]}", u["bob"]: f"bob{c.hex[:8]}", u["carol"]: f"carol{c.hex[:8]}"}
    for p, mid in zip(points, point_ids, strict=True):
        author, text = conn.execute("SELECT author_id, content FROM messages WHERE id = %s", (mid,)).fetchone()
        assert p.startswith(names[author] + ": ")
        assert p.endswith(MASK) if mid == tid else text[:40] in p
    assert "moron" not in summary and "moron" not in " ".join(points)


def test_bots_and_deleted_messages_are_skipped(conn, factory, chan, cfg):
    _, c, u = chan
    bot = factory.user(bot=True)
    for i in range(3):
        post(factory, conn, c, u["alice"], TOPIC[i], now() - timedelta(seconds=30 - i))
    post(factory, conn, c, bot, "Deploy pipeline status report: the build for main has succeeded", now() - timedelta(seconds=20))
    gone = post(factory, conn, c, u["bob"], TOPIC[3], now() - timedelta(seconds=15))
    conn.execute("UPDATE messages SET deleted_at = now() WHERE id = %s", (gone,))
    assert summarize_channel(conn, c, BagEmbedder(), cfg, force=True) is not None
    (row,) = rows(conn, c)
    assert row[7] == 3 and row[6] == [u["alice"]]
    assert gone not in row[5] and "Deploy pipeline" not in row[3]


class CountingEmbedder(BagEmbedder):
    """BagEmbedder that records every text it was asked to embed."""

    def __init__(self):
        self.texts = []

    def embed(self, texts):
        self.texts.extend(texts)
        return super().embed(texts)


def test_busy_channel_waits_for_the_interval(conn, factory, chan, cfg):
    """20 messages in a minute are not a recap; the same messages spanning the interval are."""
    _, c, u = chan
    busy = cfg.model_copy(update={"summary_min_interval_s": 1800})
    names = list(u.values())
    for i in range(8):
        post(factory, conn, c, names[i % 3], TOPIC[i % 5] + f" ({i})", now() - timedelta(seconds=30 - i))
    assert channels_due(conn, [c], cfg) == [c]  # no interval: due by count
    assert channels_due(conn, [c], busy) == []  # window spans 30 s < 30 min
    post(factory, conn, c, names[0], TOPIC[0] + " (old)", now() - timedelta(minutes=31))
    assert channels_due(conn, [c], busy) == [c]  # first message of the window is 31 min old


def test_claim_due_marks_one_pending_summary_per_channel(conn, factory, chan, cfg, redis_url):
    from enrichment_ai.embedded import redis_client
    from enrichment_ai.summaries import claim_due, pending_key, release

    _, c, u = chan
    names = list(u.values())
    for i in range(6):
        post(factory, conn, c, names[i % 3], TOPIC[i % 5] + f" [{i}]", now() - timedelta(seconds=60 - i))
    r = redis_client(redis_url)
    try:
        r.delete(pending_key(c))
        claims = [claim_due(conn, r, [c, c], cfg) for _ in range(10)]  # ten batches see the channel
        assert claims[0] == [c] and all(cl == [] for cl in claims[1:])
        assert 0 < r.ttl(pending_key(c)) <= 3600
        release(r, c)
        assert claim_due(conn, r, [c], cfg) == [c]  # still due, no longer pending: claimable again
        release(r, c)
    finally:
        r.close()


def test_summary_reuses_stored_embeddings(conn, factory, chan, cfg):
    """Messages whose analysis stored an embedding are not embedded again."""
    from enrichment_ai.analysis.shared import embedding_id
    from enrichment_ai.db import embedding_sql

    _, c, u = chan
    names = list(u.values())
    ids = [post(factory, conn, c, names[i % 3], TOPIC[i], now() - timedelta(seconds=60 - i)) for i in range(5)]
    stored = BagEmbedder().embed(TOPIC[:4])
    embedding_sql.upsert(conn, [(i, embedding_id(cfg), v) for i, v in zip(ids[:4], stored)])
    embedding_sql.upsert(conn, [(ids[4], "another-encoder|0", stored[0])])  # not ours: ignored
    counting = CountingEmbedder()
    assert summarize_channel(conn, c, counting, cfg) is not None
    assert counting.texts == [TOPIC[4]]  # only the message without a stored vector of our encoder
    (row,) = rows(conn, c)
    assert row[7] == 5 and row[4]


def test_a_background_worker_summarises_without_loading_the_models(conn, factory, chan, cfg):
    """The worker context of a background worker holds no models: window messages without
    a stored vector are placed by their words, a summary is written, and the models stay
    unloaded (loading them put 1.4 GB and an encoder beside the analysis pool)."""
    from enrichment_ai.analysis.shared import embedding_id
    from enrichment_ai.db import embedding_sql
    from workers.context import WorkerContext

    _, c, u = chan
    names = list(u.values())
    ids = [post(factory, conn, c, names[i % 3], TOPIC[i], now() - timedelta(seconds=60 - i)) for i in range(5)]
    embedding_sql.upsert(conn, [(i, embedding_id(cfg), v) for i, v in zip(ids[:3], BagEmbedder().embed(TOPIC[:3]))])
    ctx = WorkerContext(cfg)
    assert summarize_channel(conn, c, ctx, cfg, summarizer=ctx.summarizer) is not None
    assert ctx._enricher is None  # no models loaded for the two messages without a vector
    (row,) = rows(conn, c)
    assert row[7] == 5 and row[4]


def test_summary_reads_both_spaces_when_english_is_routed(conn, factory, chan, cfg):
    """With English routed to the English artifact, vectors of both spaces are reused (no
    message embedded again) and key points are chosen within a space."""
    from enrichment_ai.analysis.routed import embedding_ids, routes_english
    from enrichment_ai.db import embedding_sql

    assert routes_english(cfg)  # the default: multilingual artifact + English routed
    spaces = embedding_ids(cfg)
    assert len(spaces) == 2 and spaces[0] != spaces[1]
    _, c, u = chan
    names = list(u.values())
    ids = [post(factory, conn, c, names[i % 3], TOPIC[i], now() - timedelta(seconds=60 - i)) for i in range(5)]
    vecs = BagEmbedder().embed(TOPIC[:5])
    embedding_sql.upsert(conn, [(i, spaces[k % 2], v) for k, (i, v) in enumerate(zip(ids, vecs))])
    counting = CountingEmbedder()
    assert summarize_channel(conn, c, counting, cfg) is not None
    assert counting.texts == []
    (row,) = rows(conn, c)
    assert row[7] == 5 and row[4]


def test_batches_recheck_a_channel_found_not_due_only_after_a_while(conn, factory, chan, cfg, redis_url):
    """A batch's "not due" stands for recheck_s (1/30 of the interval): the next batches
    skip the query; the quiet sweep (recheck=False) still checks."""
    from enrichment_ai.embedded import redis_client
    from enrichment_ai.summaries import checked_key, claim_due, pending_key, recheck_s, release

    _, c, u = chan
    names = list(u.values())
    busy = cfg.model_copy(update={"summary_min_interval_s": 1800})
    assert recheck_s(busy) == 60 and recheck_s(cfg) == 0
    for i in range(6):
        post(factory, conn, c, names[i % 3], TOPIC[i % 5] + f" <{i}>", now() - timedelta(seconds=60 - i))
    r = redis_client(redis_url)
    try:
        r.delete(pending_key(c), checked_key(c))
        assert claim_due(conn, r, [c], busy) == []  # 6 messages spanning a minute: not due
        assert 0 < r.ttl(checked_key(c)) <= 60
        post(factory, conn, c, names[0], TOPIC[0] + " <old>", now() - timedelta(minutes=31))  # due from now on
        assert claim_due(conn, r, [c], busy) == []  # the batch trusts the answer of a moment ago
        assert claim_due(conn, r, [c], busy, recheck=False) == [c]  # the sweep checks
        release(r, c)
        r.delete(checked_key(c))  # the answer expired
        assert claim_due(conn, r, [c], busy) == [c]
        assert claim_due(conn, r, [c], cfg) == []  # pending now; no interval: never marked checked
        release(r, c)
        assert claim_due(conn, r, [c], cfg) == [c] and r.exists(checked_key(c)) == 0
        release(r, c)
    finally:
        r.close()


def test_a_message_still_waiting_for_its_analysis_ends_the_window_and_opens_the_next(conn, factory, chan, cfg):
    """A message whose batch is still in flight (or waiting for a retry) while later ones
    of its channel are analysed: the summary ends before it, and the next window holds it
    — it fell behind the summary's end and into no window at all."""
    _, c, u = chan
    names = list(u.values())
    t = now() - timedelta(seconds=120)
    first = [post(factory, conn, c, names[i % 3], TOPIC[i], t + timedelta(seconds=i)) for i in range(3)]
    late = post(factory, conn, c, names[0], TOPIC[3], t + timedelta(seconds=10), analysed=False)
    after = [post(factory, conn, c, names[i % 3], TOPIC[i], t + timedelta(seconds=20 + i)) for i in range(3)]
    assert summarize_channel(conn, c, BagEmbedder(), cfg, force=True) is not None
    (row,) = rows(conn, c)
    assert row[1] == first[0] and row[2] == first[-1] and row[7] == 3
    conn.execute("INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score,"
                 " model_version) VALUES (%s, %s, 0.1, 0.1, 'test.v1')", (late, t + timedelta(seconds=10)))
    assert summarize_channel(conn, c, BagEmbedder(), cfg, force=True) is not None
    second = rows(conn, c)[1]
    assert second[1] == late and second[2] == after[-1] and second[7] == 4
