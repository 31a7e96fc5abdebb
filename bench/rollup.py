"""Benchmark: the nightly rollup (incremental, set-based SQL) vs a naive per-row Python
implementation that recomputes everything from the raw tables, side by side on the same
seeded data, computing the same numbers (checked).

What is measured (``python -m bench --only rollup --messages N --repeats R``; a
throw-away database is created on the configured/embedded server and dropped after):

1. **nightly rollup** — what the beat task runs every night, in the state it finds.
   N messages are seeded over the ``days`` UTC days ending with D (yesterday); the default,
   90, is the steady state a nightly run meets: the whole reputation window holds
   activity (``--days 30`` packs the same N into a third of the window: three times the
   traffic per day, so the nightly run has three times as much to read). Untimed set-up:
   the rollup state and outputs are brought up to date through D-1 (what the previous
   nights leave: health for every earlier day, reputation as of D-1); then *late*
   activity that happened during D on older messages is added on top of day D's own
   traffic (its messages, reactions and analyses, all seeded): reactions (1.5 %) and
   replies (0.5 %) from other members to the previous 7 days' messages, re-analyses by a
   newer model version (0.5 %), self-deletions (0.1 %) and moderator deletions (0.03 %).
   Timed, alternating: ``run_rollups(conn, D)`` (SQL: health of D, late restatements of
   earlier days, reputation as of D) and ``naive_rollup(conn, first, D)`` (health of
   every seeded day and reputation as of D, recomputed from raw). Every repeat starts
   from the same saved state (restored untimed). After each SQL run, ALL
   ``community_health`` rows (every seeded day) and all ``reputation_scores`` rows must
   equal what the naive full recompute writes, or the benchmark fails.
2. **full rebuild** — ``rollup_range(conn, first, D)`` on an empty rollup state (every
   day recomputed from raw in one pass, as a backfill or a first run does) vs the same
   naive run; outputs checked equal. This row shows what the SQL gains without the
   incremental state, so the report says where the nightly win comes from.

The naive version fetches the rows (messages, analyses, reactions, replies, moderation
events), aggregates them in Python and writes its results one INSERT … ON CONFLICT per
row — what a first ORM-style implementation does.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg
from psycopg import sql

from enrichment_ai import db
from enrichment_ai.rollups import (
    DEFAULT_TOXICITY_THRESHOLD as THETA,
    REPUTATION_WINDOW_DAYS,
    rollup_range,
    run_rollups,
)


def _utc(d: date) -> datetime:
    return datetime.combine(d, dtime(0), tzinfo=timezone.utc)


def _round(x: Fraction, places: int = 2) -> Decimal:
    """PostgreSQL's round(numeric, n): half away from zero (all values here are ≥ 0)."""
    q = Decimal(x.numerator) / Decimal(x.denominator)
    return q.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def naive_rollup(conn: psycopg.Connection, first: date, last: date) -> dict:
    """The same outputs as :func:`enrichment_ai.rollups.rollup_range`, the naive way."""
    lo_w, hi = _utc(last - timedelta(days=REPUTATION_WINDOW_DAYS - 1)), _utc(last + timedelta(days=1))
    lo_d = _utc(first)
    servers = {sid: (Decimal(th), created) for sid, th, created in conn.execute(
        "SELECT s.id, round(COALESCE(es.toxicity_threshold::numeric, %s::numeric), 4), s.created_at"
        " FROM servers s LEFT JOIN server_enrichment_settings es ON es.server_id = s.id WHERE s.deleted_at IS NULL",
        (THETA,))}
    human = {uid for uid, bot, system in conn.execute("SELECT id, bot, system FROM users") if not bot and not system}
    channel_server = dict(conn.execute("SELECT id, server_id FROM channels WHERE server_id IS NOT NULL"))
    msgs = {}
    for mid, cid, author, created, deleted, length in conn.execute(
            "SELECT id, channel_id, author_id, created_at, deleted_at IS NOT NULL, char_length(content)"
            " FROM messages WHERE created_at >= %s AND created_at < %s", (lo_w, hi)):
        if cid in channel_server and author in human:
            msgs[mid] = (channel_server[cid], author, created, deleted, (length or 0) >= 40)
    latest: dict = {}
    for mid, created, version, sent, tox in conn.execute(
            "SELECT message_id, created_at, model_version, sentiment_score, toxicity_score FROM ai_analysis"
            " WHERE message_created_at >= %s AND message_created_at < %s", (lo_w, hi)):
        if mid in msgs and (mid not in latest or (created, version) > latest[mid][0]):
            latest[mid] = ((created, version), sent, tox)
    responded = set()
    for mid, user in conn.execute(
            "SELECT message_id, user_id FROM message_reactions WHERE message_created_at >= %s AND message_created_at < %s",
            (lo_w, hi)):
        if mid in msgs and user in human and user != msgs[mid][1]:
            responded.add(mid)
    for target, author, created in conn.execute(
            "SELECT referenced_message_id, author_id, created_at FROM messages WHERE referenced_message_id IS NOT NULL"
            " AND deleted_at IS NULL AND created_at >= %s", (lo_w,)):
        if target in msgs and author in human and author != msgs[target][1] and created >= msgs[target][2]:
            responded.add(target)
    events = list(conn.execute(
        "SELECT server_id, user_id, kind, created_at FROM moderation_events WHERE created_at >= %s AND created_at < %s",
        (lo_w, hi)))

    # --- aggregate in Python
    day_stats: dict = defaultdict(lambda: {"n": 0, "authors": set(), "pos": 0, "scored": 0, "toxic": 0, "resp": 0})
    user_day: dict = defaultdict(lambda: [0, 0])
    for mid, (sid, author, created, deleted, substantive) in msgs.items():
        if sid not in servers:
            continue
        theta = servers[sid][0]
        day = created.astimezone(timezone.utc).date()
        _, sent, tox = latest.get(mid, (None, None, None))
        if created >= lo_d:
            st = day_stats[(sid, day)]
            st["n"] += 1
            st["authors"].add(author)
            st["scored"] += sent is not None
            st["pos"] += sent is not None and sent >= Decimal("0.25")
            st["toxic"] += tox is not None and tox >= theta
            st["resp"] += mid in responded
        ud = user_day[(sid, author, day)]
        if not deleted:
            ud[0] += mid in responded
            ud[1] += substantive and tox is not None and tox < theta
    mods_day: dict = defaultdict(int)
    mods_user: dict = defaultdict(lambda: [0, 0])
    for sid, user, kind, created in events:
        if created >= lo_d:
            mods_day[(sid, created.astimezone(timezone.utc).date())] += 1
        mods_user[(sid, user)][0 if kind == "timeout" else 1] += 1

    health_rows = []
    d = first
    while d <= last:
        for sid, (_theta, created) in servers.items():
            st = day_stats.get((sid, d))
            if not (created < _utc(d + timedelta(days=1)) or st or (sid, d) in mods_day):
                continue
            n = st["n"] if st else 0
            pos = Fraction(st["pos"], st["scored"]) if st and st["scored"] else None
            health = None
            if n:
                safety = max(Fraction(0), 1 - Fraction(10 * st["toxic"], n))
                health = _round(Fraction(2, 5) * (pos if pos is not None else Fraction(1, 2))
                                + Fraction(35, 100) * safety + Fraction(1, 4) * Fraction(st["resp"], n))
            health_rows.append((sid, d, len(st["authors"]) if st else 0, n, None if pos is None else _round(pos),
                                st["toxic"] if st else 0, mods_day.get((sid, d), 0),
                                _round(Fraction(100 * st["resp"], n)) if n else None, health))
        d += timedelta(days=1)
    per_user: dict = defaultdict(lambda: [0, 0, 0, 0])
    for (sid, author, _day), (helpful, quality) in user_day.items():
        pu = per_user[(sid, author)]
        pu[0] += helpful
        pu[1] += quality
        pu[2] += 1
        pu[3] += min(200, 10 * helpful + 2 * quality + 5)
    keys = set(per_user) | set(mods_user) | {(s, u) for s, u in conn.execute(
        "SELECT server_id, user_id FROM reputation_scores WHERE server_id IS NOT NULL")}
    rep_rows = []
    for sid, user in keys:
        if sid not in servers or user not in human:
            continue
        h, q, days, points = per_user.get((sid, user), (0, 0, 0, 0))
        t, dl = mods_user.get((sid, user), (0, 0))
        rep_rows.append((user, sid, max(0, points - 100 * t - 20 * dl), h, q, days, t + dl, hi))

    # --- write row by row
    with conn.transaction():
        for row in health_rows:
            conn.execute(
                "INSERT INTO community_health (server_id, date, active_users, message_count, positive_sentiment_ratio,"
                " toxicity_incidents, moderation_actions, engagement_score, health_score)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (server_id, date) DO UPDATE SET"
                " active_users = EXCLUDED.active_users, message_count = EXCLUDED.message_count,"
                " positive_sentiment_ratio = EXCLUDED.positive_sentiment_ratio,"
                " toxicity_incidents = EXCLUDED.toxicity_incidents, moderation_actions = EXCLUDED.moderation_actions,"
                " engagement_score = EXCLUDED.engagement_score, health_score = EXCLUDED.health_score", row)
        for row in rep_rows:
            conn.execute(
                "INSERT INTO reputation_scores AS rs (user_id, server_id, score, helpful_messages, quality_contributions,"
                " community_engagement, moderation_actions, last_calculated, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (user_id, server_id) DO UPDATE SET"
                " score = EXCLUDED.score, helpful_messages = EXCLUDED.helpful_messages,"
                " quality_contributions = EXCLUDED.quality_contributions,"
                " community_engagement = EXCLUDED.community_engagement, moderation_actions = EXCLUDED.moderation_actions,"
                " last_calculated = EXCLUDED.last_calculated, updated_at = EXCLUDED.updated_at"
                " WHERE rs.last_calculated IS NULL OR rs.last_calculated <= EXCLUDED.last_calculated", row)
    return {"health_rows": len(health_rows), "reputation_rows": len(rep_rows)}


def _snapshot(conn: psycopg.Connection) -> tuple[list, list]:
    health = conn.execute(
        "SELECT server_id, date, active_users, message_count, positive_sentiment_ratio, toxicity_incidents,"
        " moderation_actions, engagement_score, health_score FROM community_health ORDER BY 1, 2").fetchall()
    rep = conn.execute(
        "SELECT user_id, server_id, score, helpful_messages, quality_contributions, community_engagement,"
        " moderation_actions, last_calculated FROM reputation_scores ORDER BY 1, 2").fetchall()
    return health, rep


#: Tables a rollup run changes (state, change log, outputs): saved once, restored per repeat.
_MUTABLE = ("activity_messages", "activity_daily", "rollup_days", "rollup_thresholds", "rollup_dirty",
            "community_health", "reputation_scores")
_OUTPUTS = ("community_health", "reputation_scores")
_STATE = ("activity_messages", "activity_daily", "rollup_days", "rollup_thresholds")

# Late activity during day D (%(d)s, its 00:00 UTC) on the previous 7 days' messages;
# deterministic picks (per-mille of a hash of the message id).
_LATE = [
    """CREATE TEMP TABLE bench_members ON COMMIT DROP AS
       SELECT sm.server_id, array_agg(sm.user_id ORDER BY sm.user_id) AS members
       FROM server_members sm JOIN users u ON u.id = sm.user_id AND NOT u.bot GROUP BY sm.server_id""",
    """CREATE TEMP TABLE bench_old ON COMMIT DROP AS
       SELECT m.id, m.created_at, m.channel_id, m.author_id, c.server_id,
              abs(hashtext('pick' || m.id::text)) %% 10000 AS pick,
              %(d)s::timestamptz + make_interval(secs => abs(hashtext('at' || m.id::text)) %% 86400) AS at,
              abs(hashtext('who' || m.id::text)) AS who
       FROM messages m JOIN channels c ON c.id = m.channel_id AND c.server_id IS NOT NULL
       WHERE m.created_at >= %(d)s::timestamptz - interval '7 days' AND m.created_at < %(d)s::timestamptz""",
    # reactions from other members: 1.5 %
    """INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name, created_at)
       SELECT o.id, o.created_at, b.members[1 + o.who %% array_length(b.members, 1)], '🔥', o.at
       FROM bench_old o JOIN bench_members b ON b.server_id = o.server_id
       WHERE o.pick < 150 ON CONFLICT DO NOTHING""",
    # replies from other members: 0.5 %, analysed during D
    """INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, updated_at, referenced_message_id)
       SELECT md5('late-reply' || o.id::text)::uuid, o.channel_id, b.members[1 + o.who %% array_length(b.members, 1)],
              'Late to this, but the same fix worked for me: clear the cache and rebuild.', o.at, o.at, o.at, o.id
       FROM bench_old o JOIN bench_members b ON b.server_id = o.server_id
       WHERE o.pick >= 150 AND o.pick < 200""",
    """INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score, language_code,
                               model_version, created_at)
       SELECT md5('late-reply' || o.id::text)::uuid, o.at, 0.40, 0.02, 'en', 'seed.v1', o.at + interval '3 seconds'
       FROM bench_old o WHERE o.pick >= 150 AND o.pick < 200""",
    # re-analyses by a newer model: 0.5 %
    """INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score, language_code,
                               model_version, created_at)
       SELECT a.message_id, a.message_created_at, greatest(-1, a.sentiment_score - 0.30),
              least(0.99, a.toxicity_score + 0.25), 'en', 'seed.v2', o.at
       FROM bench_old o JOIN ai_analysis a ON a.message_id = o.id AND a.message_created_at = o.created_at
       WHERE o.pick >= 200 AND o.pick < 250 AND a.model_version = 'seed.v1'""",
    # self-deletions 0.1 %, moderator deletions 0.03 % (these log moderation events on D)
    """UPDATE messages m SET deleted_at = o.at, deleted_by = o.author_id
       FROM bench_old o WHERE m.id = o.id AND m.created_at = o.created_at AND m.deleted_at IS NULL
         AND o.pick >= 250 AND o.pick < 260""",
    """UPDATE messages m SET deleted_at = o.at, deleted_by = s.owner_id
       FROM bench_old o JOIN servers s ON s.id = o.server_id
       WHERE m.id = o.id AND m.created_at = o.created_at AND m.deleted_at IS NULL AND s.owner_id <> o.author_id
         AND o.pick >= 260 AND o.pick < 263""",
]


def inject_late_activity(conn: psycopg.Connection, day: date) -> None:
    """Add the late activity of UTC ``day`` on the previous 7 days' messages (see module doc)."""
    with conn.transaction():
        for stmt in _LATE:
            conn.execute(stmt, {"d": _utc(day)})


def _truncate(conn: psycopg.Connection, tables: tuple[str, ...]) -> None:
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))


def _save(conn: psycopg.Connection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS bench_saved")
    for t in _MUTABLE:
        conn.execute(sql.SQL("CREATE TABLE bench_saved.{0} AS TABLE public.{0}").format(sql.Identifier(t)))


def _restore(conn: psycopg.Connection) -> None:
    """The saved state, written afresh and vacuumed (as autovacuum keeps it between nights)."""
    _truncate(conn, _MUTABLE)
    for t in _MUTABLE:
        conn.execute(sql.SQL("INSERT INTO public.{0} SELECT * FROM bench_saved.{0}").format(sql.Identifier(t)))
    for t in _MUTABLE:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(t)))


def _check(got: tuple[list, list], expected: tuple[list, list], what: str) -> None:
    if got != expected:
        bad = [(a, b) for a, b in zip(got[0] + got[1], expected[0] + expected[1]) if a != b][:3]
        raise AssertionError(f"{what}: naive and SQL rollups disagree ({len(got[0])}/{len(expected[0])} health,"
                             f" {len(got[1])}/{len(expected[1])} reputation rows): {bad}")


def _rows(name: str, fast: list[float], slow: list[float]) -> list[dict]:
    sql_med, naive_med = statistics.median(fast), statistics.median(slow)
    return [
        {"benchmark": name, "impl": "set-based SQL (shipped)", "median_s": round(sql_med, 3), "runs": len(fast),
         "ratio": 1.0},
        {"benchmark": name, "impl": "naive per-row Python", "median_s": round(naive_med, 3), "runs": len(slow),
         "ratio": round(naive_med / sql_med, 1)},
    ]


def run(messages: int = 200_000, repeats: int = 3, servers: int = 10, days: int = 90, keep: bool = False) -> list[dict]:
    """Seed a throw-away database and time both scenarios (see the module docstring)."""
    from enrichment_ai.config import Settings
    from enrichment_ai.embedded import start_services
    from enrichment_ai.seed import seed

    name = f"enrichment_bench_{uuid.uuid4().hex[:8]}"
    with start_services(Settings()) as services:
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = psycopg.conninfo.make_conninfo(services.database_url, dbname=name)
        try:
            with db.connect(url) as conn:
                db.migrate(conn)
                res = seed(conn, messages, servers=servers, days=days)
                first, day = res.first.date(), res.last.date()
                print(f"seeded {res.messages:,} messages in {res.seconds:.1f}s; nightly run for {day}"
                      f" (seeded days {first} .. {day})", flush=True)
                rollup_range(conn, first, day - timedelta(days=1))  # the previous nights
                inject_late_activity(conn, day)
                conn.execute("VACUUM (ANALYZE)")
                _save(conn)

                _restore(conn)
                run_rollups(conn, day)  # warm-up (caches, hint bits) for both
                nightly_sql, nightly_naive = [], []
                for i in range(repeats):
                    _restore(conn)
                    t = time.perf_counter()
                    out = run_rollups(conn, day)
                    nightly_sql.append(time.perf_counter() - t)
                    expected = _snapshot(conn)
                    _truncate(conn, _OUTPUTS)
                    t = time.perf_counter()
                    naive_rollup(conn, first, day)
                    nightly_naive.append(time.perf_counter() - t)
                    _check(_snapshot(conn), expected, "nightly")
                    print(f"  nightly run {i + 1}: sql {nightly_sql[-1]:.3f}s  naive {nightly_naive[-1]:.2f}s  "
                          f"(late messages {out['late_messages']:,}; rows equal: {len(expected[0])} health,"
                          f" {len(expected[1])} reputation)", flush=True)

                rebuild_sql, rebuild_naive = [], []
                for i in range(repeats):
                    _restore(conn)
                    _truncate(conn, _STATE + _OUTPUTS)
                    t = time.perf_counter()
                    rollup_range(conn, first, day)
                    rebuild_sql.append(time.perf_counter() - t)
                    expected = _snapshot(conn)
                    _truncate(conn, _OUTPUTS)
                    t = time.perf_counter()
                    naive_rollup(conn, first, day)
                    rebuild_naive.append(time.perf_counter() - t)
                    _check(_snapshot(conn), expected, "rebuild")
                    print(f"  rebuild run {i + 1}: sql {rebuild_sql[-1]:.2f}s  naive {rebuild_naive[-1]:.2f}s  "
                          f"(rows equal: {len(expected[0])} health, {len(expected[1])} reputation)", flush=True)
        finally:
            if not keep:
                with psycopg.connect(services.database_url, autocommit=True) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return (_rows(f"nightly rollup (incremental), {messages:,} msgs", nightly_sql, nightly_naive)
            + _rows(f"full rebuild from raw, {messages:,} msgs", rebuild_sql, rebuild_naive))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--servers", type=int, default=10)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    a = p.parse_args(argv)
    for row in run(a.messages, a.repeats, a.servers, a.days, a.keep):
        print(row)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
