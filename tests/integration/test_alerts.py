"""Moderator alerts on real PostgreSQL + Redis: once per message, only for recent
messages, per-server thresholds, readable lines."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from enrichment_ai import alerts
from enrichment_ai.embedded import redis_client
from enrichment_ai.types import Analysis, Message

pytestmark = pytest.mark.integration


@pytest.fixture
def r(redis_url):
    client = redis_client(redis_url)
    yield client
    client.close()


def make(factory, server, channel, author, text, toxicity, version="test.v1"):
    mid = factory.message(channel, author, text)
    msg = Message(mid, channel, server, author, text, datetime.now(timezone.utc))
    a = Analysis("en", 0.99, sentiment=-0.8, toxicity=toxicity, model_version=version,
                 scores={"toxicity": {"toxic": toxicity}, "offensive": {"offensive": 0.91, "non-offensive": 0.09},
                         "hate": {"hate": 0.12, "non-hate": 0.88}, "sentiment": {"negative": 0.9}},
                 details={"toxicity_span": {"text": text.split(". ")[-1], "start": 0, "end": 3, "toxicity": toxicity}})
    return msg, a


@pytest.fixture
def server(factory, conn):
    s = factory.server()
    c = factory.channel(s)
    u = factory.user(name=f"troll{uuid.uuid4().hex[:6]}")
    return s, c, u


def test_published_once_even_when_called_twice(r, conn, factory, server, settings):
    s, c, u = server
    batch = [make(factory, s, c, u, "Fine point. You are an idiot", 0.93),
             make(factory, s, c, u, "Thanks for the help", 0.02)]
    assert alerts.publish(r, conn, batch, settings) == 1
    assert alerts.publish(r, conn, batch, settings) == 0
    entries = alerts.read(r, s)
    assert len(entries) == 1
    f = entries[0][1]
    assert f["message_id"] == str(batch[0][0].id) and f["channel_id"] == str(c) and f["author_id"] == str(u)
    assert f["sentence"] == "You are an idiot"
    assert float(f["toxicity"]) == pytest.approx(0.93) and float(f["threshold"]) == pytest.approx(0.8)
    assert "offensive" in f["scores"] and "sentiment" not in f["scores"]
    line = alerts.format_alert(f)
    assert "@troll" in line and "toxicity 0.93" in line and "You are an idiot" in line and "offensive 0.91" in line
    # a new model version (or a forced recompute) of a message already alerted on: not again
    again = [(batch[0][0], make(factory, s, c, u, "x", 0.95, version="test.v2")[1])]
    assert alerts.publish(r, conn, again, settings) == 0


def test_no_alert_for_a_message_older_than_the_alert_age(r, conn, factory, server, settings):
    """History analysed now — a backfill, a model upgrade's re-analysis, an outage's
    backlog — is not news: past ``alert_max_age_s`` (7 days) a toxic message is stored
    but not alerted; within it, it is."""
    import dataclasses
    from datetime import timedelta

    s, c, u = server
    old_msg, a = make(factory, s, c, u, "Old thread. You are an idiot", 0.95)
    recent_msg, b = make(factory, s, c, u, "Last night. You are an idiot", 0.95)
    old_msg = dataclasses.replace(old_msg, created_at=datetime.now(timezone.utc) - timedelta(days=8))
    recent_msg = dataclasses.replace(recent_msg, created_at=datetime.now(timezone.utc) - timedelta(days=6))
    assert alerts.publish(r, conn, [(old_msg, a), (recent_msg, b)], settings) == 1
    assert [f["message_id"] for _, f in alerts.read(r, s)] == [str(recent_msg.id)]
    assert alerts.publish(r, conn, [(old_msg, a)], settings.model_copy(update={"alert_max_age_s": 9 * 86400})) == 1


def test_per_server_threshold(r, conn, factory, server, settings):
    s, c, u = server
    strict = factory.server()
    sc = factory.channel(strict)
    off = factory.server()
    oc = factory.channel(off)
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, 0.4)", (strict,))
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold, alerts_enabled)"
                 " VALUES (%s, 0.1, false)", (off,))
    batch = [make(factory, s, c, u, "meh. you are annoying", 0.5),       # default 0.8: no alert
             make(factory, strict, sc, u, "meh. you are annoying", 0.5),  # 0.4: alert
             make(factory, off, oc, u, "meh. you are annoying", 0.99)]    # alerts off
    assert alerts.publish(r, conn, batch, settings) == 1
    assert alerts.read(r, s) == []
    assert len(alerts.read(r, strict)) == 1
    assert alerts.read(r, off) == []
    # the default comes from Settings
    assert alerts.publish(r, conn, batch[:1], settings.model_copy(update={"toxicity_threshold": 0.5})) == 1


def test_nothing_for_dms_or_unscored(r, conn, factory, settings):
    dm = factory.channel(dm=True)
    u = factory.user()
    mid = factory.message(dm, u, "you idiot")
    m = Message(mid, dm, None, u, "you idiot", datetime.now(timezone.utc))
    a = Analysis("en", 0.9, toxicity=0.99, model_version="test.v1")
    s = factory.server()
    c = factory.channel(s)
    u2 = Message(factory.message(c, u, "???"), c, s, u, "???", datetime.now(timezone.utc))
    assert alerts.publish(r, conn, [(m, a), (u2, Analysis("und", 0.0, model_version="v"))], settings) == 0


def test_alert_follows_the_score_as_stored(r, conn, factory, server, settings):
    """toxicity_score is DECIMAL(3,2): a message stored at 0.80 with the threshold at 0.80
    is alerted on, one stored at 0.79 is not, and our rounding is PostgreSQL's."""
    values = [0.0, 0.004999, 0.005, 0.125, 0.7949999, 0.795, 0.796, 0.8, 0.805, 0.99499, 0.995, 1.0]
    pg = [float(v) for (v,) in conn.execute(
        "SELECT v::numeric(3,2) FROM unnest(%s::float8[]) WITH ORDINALITY AS t(v, i) ORDER BY i", (values,))]
    assert [alerts.stored_score(v) for v in values] == pg
    s, c, u = server
    batch = [make(factory, s, c, u, "Stored at 0.80. You are an idiot", 0.796),
             make(factory, s, c, u, "Stored at 0.79. You are a fool", 0.7949)]
    assert alerts.publish(r, conn, batch, settings) == 1
    assert [f["message_id"] for _, f in alerts.read(r, s)] == [str(batch[0][0].id)]


class _ToxicEnricher:
    """The enricher contract of process.analyze_batch with a fixed verdict: this test is
    about what happens around the models (commit, alert, redelivery), not the models."""

    model_version = "test.redelivery.v1"
    embedding_model = "none"

    def enrich_batch(self, texts, hints=None, strict=None):
        return [Analysis("en", 0.99, sentiment=-0.9, toxicity=tox, model_version=self.model_version,
                         scores={"toxicity": {"toxic": tox}, "offensive": {"offensive": tox}},
                         details={"toxicity_span": {"text": t.split(". ")[-1], "start": 0, "end": 1}})
                for t in texts for tox in [0.9349 if "idiot" in t else 0.02]]


class _RedisDownAtPublish:
    """A Redis client whose scripts fail: the connection dropped between the commit and
    the alert."""

    def register_script(self, _source):
        import redis

        def fail(**_kw):
            raise redis.ConnectionError("connection reset (test)")

        return fail


def test_an_alert_lost_to_a_failure_after_the_commit_is_published_by_the_redelivery(r, conn, factory, server, settings):
    """The batch committed its rows and then failed to publish (Redis dropped): the
    redelivered batch finds the rows already there and does not recompute them — and must
    still publish their alerts, once, or the moderator never hears of the message."""
    from enrichment_ai import process
    from enrichment_ai.db import store

    s, c, u = server
    toxic = factory.message(c, u, "Nice try. You are a worthless idiot")
    calm = factory.message(c, u, "thanks, see you tomorrow")
    enricher = _ToxicEnricher()
    import redis

    with pytest.raises(redis.ConnectionError):
        process.analyze_batch(conn, enricher, [toxic, calm], settings, redis=_RedisDownAtPublish())
    assert store.analysis_state(conn, [toxic, calm], enricher.model_version) == {
        toxic: store.ANALYSED, calm: store.ANALYSED}  # committed before the failure
    assert alerts.read(r, s) == []

    again = process.analyze_batch(conn, enricher, [toxic, calm], settings, redis=r)  # the redelivery
    assert sorted(again.already) == sorted([toxic, calm]) and not again.analysed
    assert again.alerts == 1
    (_, f), = alerts.read(r, s)
    assert f["message_id"] == str(toxic) and f["toxicity"] == "0.9349"  # the exact score, not the column's 0.93
    assert f["model_version"] == enricher.model_version and f["sentence"] == "You are a worthless idiot"
    assert "offensive" in f["scores"] and f["channel_id"] == str(c)

    third = process.analyze_batch(conn, enricher, [toxic, calm], settings, redis=r)  # once, not twice
    assert third.alerts == 0 and len(alerts.read(r, s)) == 1


def test_a_redelivery_long_after_the_row_was_written_does_not_alert(r, conn, factory, server, settings):
    """A message re-enqueued (not forced) a day after its row was written is history: its
    alert, if it was lost then, is not published now (and a published one's dedup key
    may have expired by the time anyone re-enqueues it)."""
    from enrichment_ai import process

    s, c, u = server
    toxic = factory.message(c, u, "Old news. You are an idiot")
    enricher = _ToxicEnricher()
    import redis

    with pytest.raises(redis.ConnectionError):
        process.analyze_batch(conn, enricher, [toxic], settings, redis=_RedisDownAtPublish())
    conn.execute("UPDATE ai_analysis SET updated_at = now() - interval '25 hours' WHERE message_id = %s", (toxic,))
    assert process.analyze_batch(conn, enricher, [toxic], settings, redis=r).alerts == 0
    assert alerts.read(r, s) == []
