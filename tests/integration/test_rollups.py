"""Nightly rollups on hand-built data: the exact numbers of docs/metrics.md,
idempotency, monotonic reputation, one run at a time; late changes to earlier days
picked up by the next nightly run; and incremental runs equal to a rebuild from raw."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

import factories
from enrichment_ai import db
from enrichment_ai.db import rollup_sql
from enrichment_ai.rollups import rollup_range, run_rollups
from enrichment_ai.seed import seed

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


# --- the incremental nightly run: late changes to earlier days ----------------------------

OLD = D - timedelta(days=3)  # "several days ago" from the next nightly run (D + 1)


@pytest.fixture
def small(conn, factory):
    """Server (default threshold 0.8) with authors a and c, reactor b, and a moderator;
    on OLD: a's substantive message ``ma`` (analysed, nobody responded) and c's ``mc``.
    Rolled up night after night through D, as the beat task does."""
    w = {n: factory.user() for n in ("a", "b", "c", "mod")}
    s = factory.server(w["mod"])
    ch = factory.channel(s)
    t = at(OLD, 9)
    ma = factory.message(ch, w["a"], LONG, created_at=t)
    analyse(conn, ma, t, 0.6, 0.1)
    mc = factory.message(ch, w["c"], LONG, created_at=t + timedelta(hours=1))
    analyse(conn, mc, t + timedelta(hours=1), 0.0, 0.6)
    for day in (OLD, OLD + timedelta(days=1), OLD + timedelta(days=2), D):
        run_rollups(conn, day)
    w.update(server=s, channel=ch, ma=ma, mc=mc, t=t)
    return w


def nightly(conn):
    """The next nightly run after D."""
    return run_rollups(conn, D + timedelta(days=1))


def test_late_reaction_restates_the_old_day_and_reputation(conn, small):
    s = small["server"]
    # ma: no response; positive 1 of 2 scored; mc toxic? 0.6 < 0.8 no
    assert health(conn, s, OLD) == (2, 2, Decimal("0.50"), 0, 0, Decimal("0.00"), Decimal("0.55"))
    assert reputation(conn, s, small["a"])[:4] == (7, 0, 1, 1)
    react(conn, small["ma"], small["t"], small["b"])  # during D + 1, on a message of OLD
    nightly(conn)
    # engagement 1/2; health .4*.5 + .35 + .25*.5 = 0.675 -> 0.68 (half up)
    assert health(conn, s, OLD) == (2, 2, Decimal("0.50"), 0, 0, Decimal("50.00"), Decimal("0.68"))
    assert reputation(conn, s, small["a"])[:4] == (17, 1, 1, 1)


def test_late_reply_restates_the_old_day(conn, factory, small):
    s = small["server"]
    # b replies on D + 1 to c's message of OLD (the reply itself belongs to D + 1)
    reply(factory, conn, small["channel"], small["b"], small["mc"], at(D + timedelta(days=1), 10), "agreed")
    nightly(conn)
    assert health(conn, s, OLD)[5] == Decimal("50.00")
    assert reputation(conn, s, small["c"])[:3] == (17, 1, 1)  # helpful and quality (0.6 < 0.8): 10 + 2 + 5
    assert health(conn, s, D + timedelta(days=1))[:2] == (1, 1)


def test_deleting_old_messages_restates_the_old_day(conn, small):
    s = small["server"]
    # the moderator deletes ma (soft: still counted as sent, no longer helpful/quality)
    conn.execute("UPDATE messages SET deleted_at = %s, deleted_by = %s WHERE id = %s",
                 (at(D + timedelta(days=1), 8), small["mod"], small["ma"]))
    # c's message is removed for good (hard delete cascades to its analysis)
    conn.execute("DELETE FROM messages WHERE id = %s", (small["mc"],))
    nightly(conn)
    assert health(conn, s, OLD) == (1, 1, Decimal("1.00"), 0, 0, Decimal("0.00"), Decimal("0.75"))
    # a: active on OLD (5), no quality any more, one moderator deletion (-20) -> 0
    assert reputation(conn, s, small["a"])[:5] == (0, 0, 0, 1, 1)
    # c: no message left in the window, the existing row is reset to zeros
    assert reputation(conn, s, small["c"])[:5] == (0, 0, 0, 0, 0)


def test_removing_a_reply_for_good_restates_the_message_it_answered(conn, factory, small):
    s = small["server"]
    rid = reply(factory, conn, small["channel"], small["b"], small["ma"], at(D + timedelta(days=1), 10), "same")
    nightly(conn)
    assert health(conn, s, OLD)[5] == Decimal("50.00")
    conn.execute("DELETE FROM messages WHERE id = %s", (rid,))  # never analysed, no reactions
    nightly(conn)
    assert health(conn, s, OLD)[5] == Decimal("0.00")
    assert reputation(conn, s, small["a"])[:3] == (7, 0, 1)


def test_new_analysis_of_an_old_message_restates_the_old_day(conn, small):
    s = small["server"]
    # a newer model version re-scores ma as toxic and negative (created now: the latest)
    analyse(conn, small["ma"], small["t"], -0.4, 0.9, version="test.v2")
    nightly(conn)
    # positive 0 of 2; toxic 1 of 2 -> S = 0; health .4*0 + 0 + 0 = 0.00
    assert health(conn, s, OLD) == (2, 2, Decimal("0.00"), 1, 0, Decimal("0.00"), Decimal("0.00"))
    assert reputation(conn, s, small["a"])[:3] == (5, 0, 0)


def test_threshold_change_restates_the_servers_days(conn, small):
    s = small["server"]
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, 0.5)", (s,))
    nightly(conn)
    # mc (0.6) is toxic at 0.5: 1 of 2 -> S = 0; and no longer a quality contribution
    assert health(conn, s, OLD) == (2, 2, Decimal("0.50"), 1, 0, Decimal("0.00"), Decimal("0.20"))
    assert reputation(conn, s, small["c"])[:3] == (5, 0, 0)
    # back to the default: restated again
    conn.execute("DELETE FROM server_enrichment_settings WHERE server_id = %s", (s,))
    nightly(conn)
    assert health(conn, s, OLD)[3] == 0 and reputation(conn, s, small["c"])[:3] == (7, 0, 1)


def test_a_threshold_change_picked_up_by_a_rerun_of_an_older_day_restates_the_later_days(conn, factory):
    """A re-run of an older day after a threshold change recounts every stored day of the
    server; the health rows after the day it ran for are restated too — the next nightly
    run finds the threshold already recorded and would not restate them again."""
    author = factory.user()
    s = factory.server(factory.user())
    ch = factory.channel(s)
    days = [D - timedelta(days=i) for i in (3, 2, 1, 0)]
    for d in days:
        m = factory.message(ch, author, LONG, created_at=at(d, 9))
        analyse(conn, m, at(d, 9), 0.0, 0.6)  # toxic at 0.5, not at the default 0.8
    for d in days:
        run_rollups(conn, d)
    assert [health(conn, s, d)[3] for d in days] == [0, 0, 0, 0]
    conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, 0.5)", (s,))
    run_rollups(conn, days[0])  # an operator re-runs an older day before the next nightly run
    run_rollups(conn, D + timedelta(days=1))
    incremental = [health(conn, s, d) for d in days]
    assert [h[3] for h in incremental] == [1, 1, 1, 1]
    rollup_range(conn, days[0], D + timedelta(days=1))  # from raw
    assert [health(conn, s, d) for d in days] == incremental


def test_people_turned_bots_and_moved_channels_are_restated(conn, factory, small):
    s = small["server"]
    react(conn, small["ma"], small["t"], small["b"])
    nightly(conn)
    assert health(conn, s, OLD)[5] == Decimal("50.00")
    conn.execute("UPDATE users SET bot = true WHERE id = %s", (small["b"],))  # b's reaction no longer counts
    conn.execute("UPDATE users SET system = true WHERE id = %s", (small["c"],))  # c is not a person
    nightly(conn)
    assert health(conn, s, OLD)[:2] == (1, 1) and health(conn, s, OLD)[5] == Decimal("0.00")
    other = factory.server()
    conn.execute("UPDATE channels SET server_id = %s WHERE id = %s", (other, small["channel"]))
    nightly(conn)
    assert health(conn, s, OLD)[:2] == (0, 0)  # the published row is restated
    assert health(conn, other, OLD) is None  # none was published (the server is newer than OLD)
    run_rollups(conn, OLD)  # a re-run of OLD writes it
    assert health(conn, other, OLD)[:2] == (1, 1)


def _marks(conn, ids):
    return conn.execute("SELECT count(*) FROM rollup_dirty WHERE message_id = ANY(%s)", (ids,)).fetchone()[0]


def _server_rows(conn, s):
    return (
        conn.execute("SELECT * FROM activity_daily WHERE server_id = %s ORDER BY day, user_id", (s,)).fetchall(),
        conn.execute("SELECT server_id, date, active_users, message_count, positive_sentiment_ratio, toxicity_incidents,"
                     " moderation_actions, engagement_score, health_score FROM community_health WHERE server_id = %s"
                     " ORDER BY date", (s,)).fetchall(),
        conn.execute("SELECT user_id, score, helpful_messages, quality_contributions, community_engagement,"
                     " moderation_actions, last_calculated FROM reputation_scores WHERE server_id = %s ORDER BY user_id",
                     (s,)).fetchall(),
    )


def test_the_change_log_is_consumed_and_a_second_run_changes_nothing(conn, small):
    ids = [small["ma"], small["mc"]]
    react(conn, small["ma"], small["t"], small["b"])
    analyse(conn, small["mc"], small["t"] + timedelta(hours=1), 0.5, 0.1, version="test.v2")
    assert _marks(conn, ids) >= 2
    out = nightly(conn)
    assert out["late_messages"] >= 2
    assert _marks(conn, ids) == 0
    before = _server_rows(conn, small["server"])
    again = nightly(conn)
    assert _server_rows(conn, small["server"]) == before
    assert _marks(conn, ids) == 0 and again["late_messages"] == 0


def test_a_change_committed_after_the_run_took_the_log_waits_for_the_next_run(conn, small, migrated_db):
    """A writer's mark commits with its change: a run that could not see the change
    leaves the mark, and the next run applies it. The writer never waits for the run."""
    writer = db.connect(migrated_db, autocommit=False)
    try:
        react(writer, small["ma"], small["t"], small["b"])  # not committed yet
        nightly(conn)  # does not block on the open writer
        writer.commit()
    finally:
        writer.close()
    s = small["server"]
    assert health(conn, s, OLD)[5] == Decimal("0.00")
    assert _marks(conn, [small["ma"]]) == 1
    nightly(conn)
    assert health(conn, s, OLD)[5] == Decimal("50.00")
    assert _marks(conn, [small["ma"]]) == 0


@pytest.mark.parametrize(
    ("n", "scored", "positive", "responded", "expected"),
    [
        # P = 1/3, S = 1, E = 1/6: exactly 0.525 -> 0.53 (floats give 0.52499…, and the
        # rounded parts 0.4*0.33 + 0.35 + 0.25*0.17 = 0.5245 give 0.52)
        (6, 3, 1, 1, (Decimal("0.33"), Decimal("16.67"), Decimal("0.53"))),
        # P = 0 of 1, S = 1, E = 1/2: exactly 0.475 -> 0.48 (floats give 0.47)
        (2, 1, 0, 1, (Decimal("0.00"), Decimal("50.00"), Decimal("0.48"))),
    ],
)
def test_health_score_on_a_rounding_tie_rounds_half_up(conn, factory, n, scored, positive, responded, expected):
    s = factory.server()
    ch = factory.channel(s)
    author, fan = factory.user(), factory.user()
    for i in range(n):
        t = at(D, 10) + timedelta(minutes=i)
        m = factory.message(ch, author, "short", created_at=t)
        if i < scored:
            analyse(conn, m, t, 0.5 if i < positive else 0.0, 0.1)
        if i < responded:
            react(conn, m, t, fan)
    run_rollups(conn, D)
    row = health(conn, s, D)
    assert row[:2] == (1, n)
    assert (row[2], row[5], row[6]) == expected


# --- randomized: incremental nightly runs == a rebuild from raw ---------------------------


@pytest.fixture
def own_db(services):
    """A migrated database of its own: the test compares every row of the outputs."""
    name = f"enrichment_rollup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(services.database_url, dbname=name)
    with db.connect(url) as c:
        db.migrate(c)
    yield url
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _outputs(c):
    return (
        c.execute("SELECT server_id, date, active_users, message_count, positive_sentiment_ratio, toxicity_incidents,"
                  " moderation_actions, engagement_score, health_score FROM community_health ORDER BY 1, 2").fetchall(),
        c.execute("SELECT user_id, server_id, score, helpful_messages, quality_contributions, community_engagement,"
                  " moderation_actions, last_calculated FROM reputation_scores ORDER BY 1, 2").fetchall(),
    )


def _rebuild(c, first, last):
    """From scratch: no rollup state, no health rows; every reputation row poisoned (kept,
    so the key set stays "existing rows included") and so rewritten or reported."""
    c.execute("TRUNCATE community_health, activity_messages, activity_daily, rollup_days, rollup_thresholds")
    c.execute("UPDATE reputation_scores SET score = -1, helpful_messages = -1, quality_contributions = -1,"
              " community_engagement = -1, moderation_actions = -1, last_calculated = NULL")
    rollup_range(c, first, last)


def _late_changes(c, f, rng, first, day):
    """Random late activity during UTC ``day`` on the messages of ``[first, day)``."""
    def when():
        return at(day, rng.randrange(24)) + timedelta(minutes=rng.randrange(60))

    msgs = c.execute(
        "SELECT m.id, m.created_at, m.channel_id, m.author_id, c.server_id FROM messages m"
        " JOIN channels c ON c.id = m.channel_id WHERE m.created_at >= %s AND m.created_at < %s ORDER BY m.id",
        (at(first, 0), at(day, 0))).fetchall()
    people = [r[0] for r in c.execute("SELECT id FROM users ORDER BY id")]  # bots included
    owner = dict(c.execute("SELECT id, owner_id FROM servers"))
    for mid, created, _ch, _a, _s in rng.sample(msgs, 40):  # reactions (some by bots, some self)
        c.execute("INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name)"
                  " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", (mid, created, rng.choice(people), rng.choice("ab")))
    for (rid,) in rng.sample(c.execute("SELECT id FROM message_reactions ORDER BY id").fetchall(), 10):
        c.execute("DELETE FROM message_reactions WHERE id = %s", (rid,))
    replies = []
    for mid, _created, ch, author, _s in rng.sample(msgs, 20):  # replies (some self, some by bots)
        who = author if rng.random() < 0.2 else rng.choice(people)
        replies.append(reply(f, c, ch, who, mid, when(), rng.choice((LONG, "ok"))))
    for rid in rng.sample(replies, 6):
        c.execute("UPDATE messages SET deleted_at = %s WHERE id = %s", (when(), rid))
    for rid in rng.sample(replies, 2):  # a reply re-targeted
        c.execute("UPDATE messages SET referenced_message_id = %s WHERE id = %s", (rng.choice(msgs)[0], rid))
    for mid, _created, _ch, author, s in rng.sample(msgs, 15):  # deletions, by the author or a moderator
        c.execute("UPDATE messages SET deleted_at = %s, deleted_by = %s WHERE id = %s AND deleted_at IS NULL",
                  (when(), rng.choice((author, owner[s])), mid))
    for (mid,) in rng.sample(c.execute("SELECT id FROM messages WHERE deleted_at IS NOT NULL ORDER BY id").fetchall(), 4):
        c.execute("UPDATE messages SET deleted_at = NULL, deleted_by = NULL WHERE id = %s", (mid,))
    for mid, _created, _ch, _a, _s in rng.sample(msgs, 4):  # removed for good
        c.execute("DELETE FROM messages WHERE id = %s", (mid,))
    msgs = c.execute("SELECT m.id, m.created_at FROM messages m WHERE m.created_at >= %s AND m.created_at < %s"
                     " ORDER BY m.id", (at(first, 0), at(day, 0))).fetchall()
    for mid, created in rng.sample(msgs, 20):  # re-analyses by newer model versions
        c.execute("INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score, model_version)"
                  " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (message_id, model_version) DO UPDATE"
                  " SET sentiment_score = EXCLUDED.sentiment_score, toxicity_score = EXCLUDED.toxicity_score",
                  (mid, created, round(rng.uniform(-1, 1), 2), round(rng.random(), 2), rng.choice(("t.v2", "t.v3"))))
    for mid, _created in rng.sample(msgs, 5):
        c.execute("UPDATE ai_analysis SET toxicity_score = %s WHERE message_id = %s", (round(rng.random(), 2), mid))
    for mid, _created in rng.sample(msgs, 5):  # edits across the 40-character line
        c.execute("UPDATE messages SET content = %s WHERE id = %s", (rng.choice((LONG, "short")), mid))
    channels = [r[0] for r in c.execute("SELECT id FROM channels WHERE server_id IS NOT NULL ORDER BY id")]
    for _ in range(3):  # messages imported late into earlier days
        old = first + timedelta(days=rng.randrange((day - first).days))
        f.message(rng.choice(channels), rng.choice(people), rng.choice((LONG, "hi")),
                  created_at=at(old, rng.randrange(24)))
    server = rng.choice(sorted(owner))
    c.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, %s)"
              " ON CONFLICT (server_id) DO UPDATE SET toxicity_threshold = EXCLUDED.toxicity_threshold",
              (server, rng.choice((0.85, 0.9, 0.95))))  # seeded toxic scores are 0.80..0.99
    sid, uid = rng.choice(c.execute("SELECT server_id, user_id FROM server_members ORDER BY 1, 2").fetchall())
    old = first + timedelta(days=rng.randrange((day - first).days))
    c.execute("UPDATE server_members SET communication_disabled_until = %s, updated_at = %s"  # a timeout dated back
              " WHERE server_id = %s AND user_id = %s", (at(old, 12) + timedelta(days=400), at(old, 12), sid, uid))


def _nights(c, first, last, after_each=None) -> None:
    """The nightly run for every day of ``[first, last]``, in order; ``after_each()``,
    when given, must hold after each night."""
    d = first
    while d <= last:
        run_rollups(c, d)
        assert after_each is None or after_each(), f"after the night of {d}"
        d += timedelta(days=1)


def test_incremental_nightly_runs_equal_a_rebuild_after_random_late_changes(own_db):
    rng = random.Random(20240305)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    with db.connect(own_db) as c:
        f = factories.Factory(c)
        res = seed(c, 3000, servers=3, days=10, end=today - timedelta(days=2), tag="eqv")
        first, day = res.first.date(), res.last.date()
        _nights(c, first, day)  # the nights so far
        for _ in range(2):  # two more nights, each after a day of late changes
            day += timedelta(days=1)
            _late_changes(c, f, rng, first, day)
            out = run_rollups(c, day)
            assert out["late_messages"] > 50
            incremental = _outputs(c)
            assert len(incremental[0]) == 3 * ((day - first).days + 1)
            _rebuild(c, first, day)
            assert _outputs(c) == incremental


# --- activity_totals (migration 0054): the per-person sums reputation reads ---------------

_AGGREGATE = ("SELECT server_id, user_id, sum(helpful), sum(quality), count(*),"
              " sum(LEAST(200, 10 * helpful + 2 * quality + 5)) FROM activity_daily GROUP BY 1, 2 ORDER BY 1, 2")


def _totals(c):
    return c.execute("SELECT server_id, user_id, helpful, quality, active_days, points FROM activity_totals"
                     " ORDER BY 1, 2").fetchall()


def _numbers(c, source, as_of):
    """``rollup_reputation`` built from ``source`` ("totals" / "aggregate"), rolled back."""
    with c.transaction(force_rollback=True):
        c.execute(rollup_sql.NUMBERS[source], {"as_of": as_of, "window_days": 90})
        return c.execute("SELECT * FROM rollup_reputation ORDER BY server_id, user_id").fetchall()


def _totals_are_the_window(c, as_of):
    return c.execute(rollup_sql.TOTALS_ARE_THE_WINDOW, {"as_of": as_of, "window_days": 90}).fetchone()[0]


def test_activity_totals_follow_activity_daily_through_nightly_runs_and_late_changes(own_db):
    rng = random.Random(20240611)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    with db.connect(own_db) as c:
        f = factories.Factory(c)
        res = seed(c, 2000, servers=2, days=6, end=today - timedelta(days=3), tag="tot")
        first, day = res.first.date(), res.last.date()
        _nights(c, first, day, after_each=lambda: _totals(c) == c.execute(_AGGREGATE).fetchall())
        for _ in range(2):  # late changes: upserts, updates and deletes of activity_daily rows
            day += timedelta(days=1)
            _late_changes(c, f, rng, first, day)
            assert run_rollups(c, day)["late_messages"] > 50
            assert _totals(c) == c.execute(_AGGREGATE).fetchall() != []
            assert all(row[4] > 0 for row in _totals(c))  # no row of a person without activity
        assert _totals_are_the_window(c, day)
        assert _numbers(c, "totals", day) == _numbers(c, "aggregate", day) != []
        # a re-run of an older day leaves later days in the state: the run must not read the totals
        run_rollups(c, day - timedelta(days=2))
        assert _totals(c) == c.execute(_AGGREGATE).fetchall()
        assert not _totals_are_the_window(c, day - timedelta(days=2))
        assert _totals_are_the_window(c, day)
        # TRUNCATE of activity_daily (as a rebuild does) empties the totals; a rebuild refills them
        c.execute("TRUNCATE activity_daily, activity_messages, rollup_days")
        assert _totals(c) == []
        rollup_range(c, first, day)
        assert _totals(c) == c.execute(_AGGREGATE).fetchall() != []
