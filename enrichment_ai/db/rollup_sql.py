"""SQL of the nightly rollups: ``community_health`` and ``reputation_scores``, summed
from ``activity_daily`` (kept current by :mod:`enrichment_ai.db.activity_sql`; its
per-person sums, ``activity_totals``, by triggers: migration ``0054``) and
``moderation_events``.

Set-based ``INSERT … SELECT … ON CONFLICT DO UPDATE``, parameterised; the formulas are
those of ``docs/metrics.md`` (keep the two in step). Days are UTC days.
Parameters: ``first``/``last`` (dates, inclusive), ``lo_day`` (first day of the
reputation window, back to which health rows are restated), ``restate_days``,
``as_of`` (date whose end closes the reputation window), ``window_days``.
"""

from __future__ import annotations

from datetime import date

import psycopg

#: pg_advisory_xact_lock key: one rollup at a time.
ROLLUP_LOCK_KEY = 0x726F6C6C  # "roll"

#: A person: not a bot, not a system account.
_HUMAN = "NOT (u.bot IS TRUE OR u.system IS TRUE)"

#: Servers that are not deleted: the only ones with health and reputation rows.
_SERVERS = """
srv AS (SELECT s.id AS server_id, s.created_at FROM servers s WHERE s.deleted_at IS NULL)"""

_DAY_HI = "((%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC')"
#: The last day a health row may be restated: ``last``, or a later day whose activity this
#: run changed (a re-run of an older day still recounts every stored day after a threshold
#: change or a late edit; the next runs see nothing left to restate for them).
_TARGET_HI = "GREATEST(%(last)s::date, (SELECT max(day) FROM rollup_touched))"
#: Health may be restated back to the start of the reputation window.
_RESTATE_LO = "LEAST(%(first)s::date, %(lo_day)s::date)"

# Targets: every server and day of [first, last] (new rows allowed), plus existing rows
# to restate: (server, day) pairs whose activity this run changed outside [first, last]
# (rollup_touched: late changes, a threshold change's recount — also of days after
# ``last`` when an older day is re-run), and, before ``last``, days recomputed from raw
# outside [first, last] (restate_days) and days whose moderation count moved (a
# moderation event dated in the past).
HEALTH_UPSERT = f"""
WITH {_SERVERS},
mods AS (
    SELECT server_id, (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM moderation_events
    WHERE created_at >= ({_RESTATE_LO}::timestamp AT TIME ZONE 'UTC')
      AND created_at < (({_TARGET_HI} + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2
),
targets AS (
    SELECT srv.server_id, d::date AS day
    FROM srv CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
    UNION
    SELECT ch.server_id, ch.date FROM community_health ch
    WHERE ch.date >= {_RESTATE_LO}
      AND ((ch.server_id, ch.date) IN (SELECT server_id, day FROM rollup_touched)
           OR ch.date <= %(last)s::date
              AND (ch.date = ANY(%(restate_days)s::date[])
                   OR ch.moderation_actions IS DISTINCT FROM
                      COALESCE((SELECT mods.n FROM mods WHERE mods.server_id = ch.server_id AND mods.day = ch.date), 0)))
)
INSERT INTO community_health AS ch (
    server_id, date, active_users, message_count, positive_sentiment_ratio,
    toxicity_incidents, moderation_actions, engagement_score, health_score)
SELECT srv.server_id, t.day,
       agg.active_users,
       COALESCE(agg.message_count, 0),
       round(agg.positive::numeric / NULLIF(agg.scored, 0), 2),
       COALESCE(agg.toxic, 0),
       COALESCE(mods.n, 0),
       round(100 * agg.responded::numeric / NULLIF(agg.message_count, 0), 2),
       -- 0.40·P + 0.35·S + 0.25·E as ONE exact fraction (P = pn/pd, S = sn/n, E = responded/n),
       -- so a value exactly on a rounding tie rounds like the exact formula says
       round((40::numeric * p.pn * agg.message_count + 35 * p.sn * p.pd + 25 * agg.responded * p.pd)
             / NULLIF(100 * p.pd * agg.message_count, 0), 2)
FROM targets t
JOIN srv ON srv.server_id = t.server_id
-- per target: the (server, day) prefix of activity_daily's key (no rows: all NULL / 0)
CROSS JOIN LATERAL (
    SELECT sum(a.messages) AS message_count, count(*) AS active_users, sum(a.positive) AS positive,
           sum(a.scored) AS scored, sum(a.toxic) AS toxic, sum(a.responded) AS responded
    FROM activity_daily a WHERE a.server_id = t.server_id AND a.day = t.day
) agg
LEFT JOIN mods ON mods.server_id = t.server_id AND mods.day = t.day
LEFT JOIN community_health old ON old.server_id = t.server_id AND old.date = t.day
CROSS JOIN LATERAL (
    SELECT CASE WHEN agg.scored > 0 THEN agg.positive ELSE 1 END::bigint AS pn,
           CASE WHEN agg.scored > 0 THEN agg.scored ELSE 2 END::bigint AS pd,
           GREATEST(0, agg.message_count - 10 * agg.toxic)::bigint AS sn
) p
-- no new row for a day before the server existed, unless something happened (an
-- existing row is always brought up to date)
WHERE srv.created_at < (t.day + 1)::timestamp AT TIME ZONE 'UTC'
   OR agg.active_users > 0 OR mods.server_id IS NOT NULL OR old.id IS NOT NULL
ON CONFLICT (server_id, date) DO UPDATE SET
    active_users = EXCLUDED.active_users,
    message_count = EXCLUDED.message_count,
    positive_sentiment_ratio = EXCLUDED.positive_sentiment_ratio,
    toxicity_incidents = EXCLUDED.toxicity_incidents,
    moderation_actions = EXCLUDED.moderation_actions,
    engagement_score = EXCLUDED.engagement_score,
    health_score = EXCLUDED.health_score
"""

_WIN_LO = "((%(as_of)s::date - %(window_days)s + 1)::timestamp AT TIME ZONE 'UTC')"
_WIN_HI = "((%(as_of)s::date + 1)::timestamp AT TIME ZONE 'UTC')"

# Reputation as of D, in three statements: the numbers of every (server, person) with
# activity or moderation in the window (read from activity_totals, or one aggregate over
# activity_daily when that holds days outside the window), joined by hash to the
# existing rows (rows without numbers get zeros), then ONE UPDATE of the existing rows
# by id (a HOT update: no index covers a column it changes, migration 0055), then INSERT
# of the keys that have no row yet. Rows of deleted servers and of bots are left as they
# are; an older run never overwrites a newer one.

#: The window's numbers per (server, person), summed from activity_daily (any state).
_PER_USER_AGGREGATE = """
    SELECT server_id, user_id, sum(helpful) AS helpful, sum(quality) AS quality,
           count(*) AS active_days,
           sum(rollup_daily_points(helpful, quality)) AS points
    FROM activity_daily
    WHERE day > %(as_of)s::date - %(window_days)s AND day <= %(as_of)s::date
    GROUP BY 1, 2"""
#: The same, read from activity_totals (migration 0054: the sums over every activity_daily
#: row, kept by triggers): only when activity_daily holds no day outside the window.
_PER_USER_TOTALS = """
    SELECT server_id, user_id, helpful, quality, active_days, points FROM activity_totals"""

#: Whether activity_daily holds only days of the window ending ``as_of`` (then
#: activity_totals are the window's numbers). Days before it were pruned by this run; a
#: later day is left by a re-run of an older day. Two probes of activity_daily's key (a
#: skip scan over its few servers), never a scan of the table.
TOTALS_ARE_THE_WINDOW = """
SELECT NOT EXISTS (SELECT 1 FROM activity_daily WHERE day > %(as_of)s::date)
   AND NOT EXISTS (SELECT 1 FROM activity_daily WHERE day <= %(as_of)s::date - %(window_days)s)"""


def _numbers(per_user: str) -> str:
    """SQL: the run's ``rollup_reputation`` from the per-person numbers ``per_user``: every
    (server, person) with numbers or a reputation row, of a server that is not deleted and
    a person (rows of neither get zeros); ``row_id``: its row (NULL: none yet), found by one
    hash join, so neither write probes the table per key."""
    return f"""CREATE TEMP TABLE rollup_reputation ON COMMIT DROP AS
WITH {_SERVERS},
per_user AS ({per_user}
),
mods AS (
    SELECT server_id, user_id,
           count(*) FILTER (WHERE kind = 'timeout') AS timeouts,
           count(*) FILTER (WHERE kind = 'message_delete') AS deletions
    FROM moderation_events
    WHERE created_at >= {_WIN_LO} AND created_at < {_WIN_HI}
    GROUP BY 1, 2
),
nums AS (
    SELECT COALESCE(p.server_id, mo.server_id) AS server_id, COALESCE(p.user_id, mo.user_id) AS user_id,
           GREATEST(0, COALESCE(p.points, 0) - 100 * COALESCE(mo.timeouts, 0) - 20 * COALESCE(mo.deletions, 0)) AS score,
           COALESCE(p.helpful, 0) AS helpful, COALESCE(p.quality, 0) AS quality,
           COALESCE(p.active_days, 0) AS active_days,
           COALESCE(mo.timeouts, 0) + COALESCE(mo.deletions, 0) AS moderation_actions
    FROM per_user p FULL JOIN mods mo ON mo.server_id = p.server_id AND mo.user_id = p.user_id
)
SELECT srv.server_id, u.id AS user_id, COALESCE(n.score, 0) AS score, COALESCE(n.helpful, 0) AS helpful,
       COALESCE(n.quality, 0) AS quality, COALESCE(n.active_days, 0) AS active_days,
       COALESCE(n.moderation_actions, 0) AS moderation_actions, r.id AS row_id
FROM nums n
FULL JOIN reputation_scores r ON r.server_id = n.server_id AND r.user_id = n.user_id
JOIN srv ON srv.server_id = COALESCE(n.server_id, r.server_id)
JOIN users u ON u.id = COALESCE(n.user_id, r.user_id) AND {_HUMAN}"""


#: ``rollup_reputation``: from the totals, or aggregated (keys: ``"totals"``, ``"aggregate"``).
NUMBERS = {"totals": _numbers(_PER_USER_TOTALS), "aggregate": _numbers(_PER_USER_AGGREGATE)}

#: The writes, from ``rollup_reputation``: its rows with a reputation row, then the others
#: (ON CONFLICT: a row created since, e.g. by a concurrent writer).
REPUTATION = [
    f"""UPDATE reputation_scores AS rs SET
    score = n.score,
    helpful_messages = n.helpful,
    quality_contributions = n.quality,
    community_engagement = n.active_days,
    moderation_actions = n.moderation_actions,
    last_calculated = {_WIN_HI},
    updated_at = now()
FROM rollup_reputation n
WHERE rs.id = n.row_id AND (rs.last_calculated IS NULL OR rs.last_calculated <= {_WIN_HI})""",
    f"""INSERT INTO reputation_scores AS rs (
    user_id, server_id, score, helpful_messages, quality_contributions,
    community_engagement, moderation_actions, last_calculated, updated_at)
SELECT n.user_id, n.server_id, n.score, n.helpful, n.quality, n.active_days, n.moderation_actions, {_WIN_HI}, now()
FROM rollup_reputation n
WHERE n.row_id IS NULL
ON CONFLICT (user_id, server_id) DO UPDATE SET
    score = EXCLUDED.score,
    helpful_messages = EXCLUDED.helpful_messages,
    quality_contributions = EXCLUDED.quality_contributions,
    community_engagement = EXCLUDED.community_engagement,
    moderation_actions = EXCLUDED.moderation_actions,
    last_calculated = EXCLUDED.last_calculated,
    updated_at = EXCLUDED.updated_at
WHERE rs.last_calculated IS NULL OR rs.last_calculated <= EXCLUDED.last_calculated""",
]


def lock(conn: psycopg.Connection) -> None:
    """Wait for the rollup lock (released when the surrounding transaction ends)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))


def set_work_mem(conn: psycopg.Connection, amount: str) -> None:
    """``work_mem`` for the rest of the transaction only."""
    conn.execute("SELECT set_config('work_mem', %s, true)", (amount,))


def upsert_health(conn: psycopg.Connection, first: date, last: date, *, lo_day: date, restate_days: list[date]) -> int:
    """Write ``community_health`` for every day of ``[first, last]`` and restate the
    existing rows of earlier days (back to ``lo_day``) whose inputs changed; rows written.
    Reads ``activity_daily`` and the run's ``rollup_touched``."""
    cur = conn.execute(HEALTH_UPSERT, {"first": first, "last": last, "lo_day": lo_day, "restate_days": restate_days})
    return cur.rowcount


def upsert_reputation(conn: psycopg.Connection, as_of: date, window_days: int) -> int:
    """Write ``reputation_scores`` over the ``window_days`` UTC days ending ``as_of``
    (from ``activity_daily``, which must hold every day of that window, or its
    ``activity_totals`` when it holds no other day)."""
    params = {"as_of": as_of, "window_days": window_days}
    totals = conn.execute(TOTALS_ARE_THE_WINDOW, params).fetchone()[0]
    conn.execute(NUMBERS["totals" if totals else "aggregate"], params)
    return sum(conn.execute(stmt, params).rowcount for stmt in REPUTATION)
