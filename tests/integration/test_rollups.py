"""Nightly rollups on hand-built data: the exact numbers of docs/metrics.md,
idempotency, monotonic reputation, and one run at a time."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal

import pytest

from enrichment_ai import db
from enrichment_ai.db import rollup_sql
from enrichment_ai.rollups import rollup_range, run_rollups

pytestmark = pytest.mark.integration

D = (datetime.now(timezone.utc) - timedelta(days=5)).date()


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, dtime(hour), tzinfo=timezone.utc)


LONG = "This is a substantive message about the release plan for v2."  # >= 40 chars


def analyse(conn, mid, created, sentiment, toxicity, version="test.v1"):
    conn.execute(
        "INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score, model_version)"
        " VALUES (%s, %s, %s, %s, %s)",
        (mid, created, sentiment, toxicity, version),
    )


def react(conn, mid, created, user):
    conn.execute(
        "INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name) VALUES (%s, %s, %s, '👍')",
        (mid, created, user),
    )


def reply(factory, conn, channel, author, target, created, text=LONG):
    mid = factory.message(channel, author, text, created_at=created)
    conn.execute("UPDATE messages SET referenced_message_id = %s WHERE id = %s", (target, mid))
    return mid


@pytest.fixture
def world(conn, factory):
    """Server S (threshold 0.5) with alice, bob, carol, a bot and a moderator."""
    w = {n: factory.user(name=f"{n}-{time.time_ns() % 10**9}") for n in ("alice", "bob", "carol", "mod")}
    w["bot"] = factory.user(bot=True)
    s = factory.server(w["mod"])
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, 0.5)", (s,))
    c = factory.channel(s)
    for n in ("alice", "bob", "carol", "mod", "bot"):
        conn.execute("INSERT INTO server_members (server_id, user_id) VALUES (%s, %s)", (s, w[n]))
    w.update(server=s, channel=c)
    a, b, cl = w["alice"], w["bob"], w["carol"]
    # D-2: carol's helpful, quality message (alice replies on D-2)
    t = at(D - timedelta(days=2), 9)
    m7 = factory.message(c, cl, LONG, created_at=t)
    analyse(conn, m7, t, 0.1, 0.1)
    reply(factory, conn, c, a, m7, t + timedelta(minutes=5), "ok")  # alice's short reply, D-2
    # D-1: alice's helpful, quality message (carol reacts)
    t = at(D - timedelta(days=1), 9)
    m0 = factory.message(c, a, LONG, created_at=t)
    analyse(conn, m0, t, 0.9, 0.0)
    react(conn, m0, t, cl)
    # day D
    t1, t2, t3, t4, t5, t6 = (at(D, h) for h in (8, 9, 10, 11, 12, 13))
    m1 = factory.message(c, a, LONG, created_at=t1)
    analyse(conn, m1, t1, 0.8, 0.1)
    react(conn, m1, t1, b)
    m2 = factory.message(c, a, "short", created_at=t2)
    analyse(conn, m2, t2, 0.3, 0.6)
    react(conn, m2, t2, a)  # self-reaction: not a response
    m3 = reply(factory, conn, c, b, m1, t3)
    analyse(conn, m3, t3, -0.5, 0.2)
    react(conn, m3, t3, w["bot"])  # bot reaction: not a response
    m4 = factory.message(c, cl, LONG, created_at=t4)  # never analysed, deleted by the moderator
    conn.execute("UPDATE messages SET deleted_at = %s, deleted_by = %s WHERE id = %s", (t4 + timedelta(minutes=1), w["mod"], m4))
    m5 = factory.message(c, w["bot"], LONG, created_at=t5)  # bots are not counted
    analyse(conn, m5, t5, 0.9, 0.9)
    m6 = factory.message(c, cl, LONG, created_at=t6)
    analyse(conn, m6, t6, 0.0, 0.55)
    react(conn, m6, t6, b)
    # a self-deletion is not moderation
    m8 = factory.message(c, a, "oops", created_at=t6)
    conn.execute("UPDATE messages SET deleted_at = %s, deleted_by = %s WHERE id = %s", (t6, a, m8))
    # bob is timed out at noon on D
    conn.execute(
        "UPDATE server_members SET communication_disabled_until = %s, updated_at = %s WHERE server_id = %s AND user_id = %s",
        (at(D, 12) + timedelta(days=1), at(D, 12), s, b),
    )
    return w


def health(conn, server, day):
    return conn.execute(
        "SELECT active_users, message_count, positive_sentiment_ratio, toxicity_incidents, moderation_actions,"
        " engagement_score, health_score FROM community_health WHERE server_id = %s AND date = %s",
        (server, day),
    ).fetchone()


def reputation(conn, server, user):
    return conn.execute(
        "SELECT score, helpful_messages, quality_contributions, community_engagement, moderation_actions, last_calculated"
        " FROM reputation_scores WHERE server_id = %s AND user_id = %s",
        (server, user),
    ).fetchone()


def test_health_numbers_match_the_documented_formulas(conn, world):
    run_rollups(conn, D)
    # M = m1, m2, m3, m4, m6, m8 (bot's m5 excluded; deleted ones were sent)
    # scored 4 (m1 .8, m2 .3, m3 -.5, m6 0) -> positive m1, m2 -> 0.50
    # toxic >= 0.5: m2, m6 -> 2; moderation: m4 deletion + bob's timeout -> 2
    # responded: m1 (bob), m6 (bob) -> 2/6 -> 33.33; health .4*.5 + .35*max(0, 1-10*2/6) + .25*2/6 = 0.28
    assert health(conn, world["server"], D) == (3, 6, Decimal("0.50"), 2, 2, Decimal("33.33"), Decimal("0.28"))
    # D-1: alice's m0 only
    run_rollups(conn, D - timedelta(days=1))
    assert health(conn, world["server"], D - timedelta(days=1)) == (
        1, 1, Decimal("1.00"), 0, 0, Decimal("100.00"), Decimal("1.00"))


def test_reputation_numbers_match_the_documented_formulas(conn, world):
    run_rollups(conn, D)
    end = at(D + timedelta(days=1), 0)
    # alice: D-2 short reply (5), D-1 m0 helpful+quality (17), D m1 helpful+quality (17) -> 39
    assert reputation(conn, world["server"], world["alice"]) == (39, 2, 2, 3, 0, end)
    # bob: m3 quality only (7) - 100 timeout -> 0
    assert reputation(conn, world["server"], world["bob"]) == (0, 0, 1, 1, 1, end)
    # carol: D-2 m7 helpful+quality (17) + D m6 helpful, toxic -> not quality (15) - 20 deletion -> 12
    assert reputation(conn, world["server"], world["carol"]) == (12, 2, 1, 2, 1, end)
    assert reputation(conn, world["server"], world["bot"]) is None


def test_daily_cap(conn, factory):
    s = factory.server()
    c = factory.channel(s)
    dave, fan = factory.user(), factory.user()
    for i in range(25):
        t = at(D, 10) + timedelta(minutes=i)
        m = factory.message(c, dave, LONG, created_at=t)
        analyse(conn, m, t, 0.5, 0.1)
        react(conn, m, t, fan)
    run_rollups(conn, D)
    assert reputation(conn, s, dave)[:5] == (200, 25, 25, 1, 0)  # 25*10 + 25*2 + 5 = 305 -> cap 200


def test_rerun_is_idempotent_and_older_days_do_not_overwrite(conn, world):
    run_rollups(conn, D)
    before_h = health(conn, world["server"], D)
    before_r = reputation(conn, world["server"], world["carol"])
    n = conn.execute("SELECT count(*) FROM community_health WHERE server_id = %s", (world["server"],)).fetchone()[0]
    run_rollups(conn, D)
    assert health(conn, world["server"], D) == before_h
    assert reputation(conn, world["server"], world["carol"]) == before_r
    assert conn.execute("SELECT count(*) FROM community_health WHERE server_id = %s", (world["server"],)).fetchone()[0] == n
    # an older day recomputes its health but leaves the newer reputation alone
    run_rollups(conn, D - timedelta(days=3))
    assert reputation(conn, world["server"], world["carol"]) == before_r


def test_backfill_range_writes_every_day(conn, world):
    out = rollup_range(conn, D - timedelta(days=2), D)
    assert out["health_rows"] >= 3
    rows = conn.execute(
        "SELECT date, message_count FROM community_health WHERE server_id = %s AND date BETWEEN %s AND %s ORDER BY date",
        (world["server"], D - timedelta(days=2), D),
    ).fetchall()
    assert rows == [(D - timedelta(days=2), 2), (D - timedelta(days=1), 1), (D, 6)]


def test_concurrent_runs_serialize(conn, world, migrated_db):
    """While one run holds the lock, a second waits for it, then completes."""
    holder = db.connect(migrated_db)
    holder.execute("BEGIN")
    rollup_sql.lock(holder)
    done = threading.Event()
    errors: list[BaseException] = []

    def second():
        try:
            with db.connect(migrated_db) as c2:
                run_rollups(c2, D)
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            done.set()

    th = threading.Thread(target=second)
    th.start()
    try:
        time.sleep(1.0)
        assert not done.is_set(), "second run did not wait for the lock"
        waiting = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()[0]
        assert waiting >= 1
    finally:
        holder.execute("COMMIT")
        holder.close()
    th.join(30)
    assert done.is_set() and not errors, errors
    assert health(conn, world["server"], D)[1] == 6
