"""Benchmark: the nightly rollup (set-based SQL) vs a naive per-row Python implementation,
side by side on the same seeded data, computing the same numbers (checked).

The run measured is the nightly job over the whole seeded period: ``community_health``
for every seeded UTC day and ``reputation_scores`` as of the last day (its 90-day window
covers every seeded message). The naive version fetches the rows (messages, analyses,
reactions, replies, moderation events), aggregates them in Python and writes its
results one INSERT … ON CONFLICT per row — what a first ORM-style implementation does.

``python -m bench.rollup --messages 1000000 --repeats 3`` (a throw-away database is
created on the configured/embedded server and dropped afterwards).
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
from enrichment_ai.rollups import DEFAULT_TOXICITY_THRESHOLD as THETA, REPUTATION_WINDOW_DAYS, rollup_range


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
    for target, author in conn.execute(
            "SELECT referenced_message_id, author_id FROM messages WHERE referenced_message_id IS NOT NULL"
            " AND deleted_at IS NULL AND created_at >= %s", (lo_w,)):
        if target in msgs and author in human and author != msgs[target][1]:
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


def _clear(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE community_health, reputation_scores")


def run(messages: int = 200_000, repeats: int = 3, servers: int = 10, days: int = 30, keep: bool = False) -> list[dict]:
    """Seed a throw-away database, time both implementations ``repeats`` times each
    (alternating, tables truncated before every run), check they agree."""
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
                conn.execute("VACUUM (ANALYZE)")
                first, last = res.first.date(), res.last.date()
                print(f"seeded {res.messages:,} messages in {res.seconds:.1f}s; rollup {first} .. {last}", flush=True)
                rollup_range(conn, first, last)  # warm-up (caches, hint bits) for both
                fast, slow = [], []
                for i in range(repeats):
                    _clear(conn)
                    t = time.perf_counter()
                    rollup_range(conn, first, last)
                    fast.append(time.perf_counter() - t)
                    expected = _snapshot(conn)
                    _clear(conn)
                    t = time.perf_counter()
                    naive_rollup(conn, first, last)
                    slow.append(time.perf_counter() - t)
                    got = _snapshot(conn)
                    if got != expected:
                        bad = [(a, b) for a, b in zip(got[0] + got[1], expected[0] + expected[1]) if a != b][:3]
                        raise AssertionError(f"naive and SQL rollups disagree ({len(got[0])}/{len(expected[0])} health,"
                                             f" {len(got[1])}/{len(expected[1])} reputation rows): {bad}")
                    print(f"  run {i + 1}: sql {fast[-1]:.2f}s  naive {slow[-1]:.2f}s  "
                          f"(rows equal: {len(expected[0])} health, {len(expected[1])} reputation)", flush=True)
        finally:
            if not keep:
                with psycopg.connect(services.database_url, autocommit=True) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    sql_med, naive_med = statistics.median(fast), statistics.median(slow)
    return [
        {"benchmark": f"nightly rollup, {messages:,} msgs", "impl": "set-based SQL (shipped)",
         "median_s": round(sql_med, 3), "runs": len(fast), "ratio": 1.0},
        {"benchmark": f"nightly rollup, {messages:,} msgs", "impl": "naive per-row Python",
         "median_s": round(naive_med, 3), "runs": len(slow), "ratio": round(naive_med / sql_med, 1)},
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--servers", type=int, default=10)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    a = p.parse_args(argv)
    for row in run(a.messages, a.repeats, a.servers, a.days, a.keep):
        print(row)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
