"""SQL of the nightly rollups: ``community_health`` and ``reputation_scores``.

Set-based ``INSERT … SELECT … ON CONFLICT DO UPDATE``, parameterised; the formulas are
those of ``docs/metrics.md`` (keep the two in step). Days are UTC days.
Parameters: ``first``/``last`` (dates, inclusive), ``threshold`` (default toxicity
threshold), ``as_of`` (date whose end closes the reputation window), ``window_days``.
"""

from __future__ import annotations

from datetime import date

import psycopg

#: pg_advisory_xact_lock key: one rollup at a time.
ROLLUP_LOCK_KEY = 0x726F6C6C  # "roll"

#: A person: not a bot, not a system account.
_HUMAN = "NOT (u.bot IS TRUE OR u.system IS TRUE)"

#: Servers (not deleted) and their toxicity threshold θ(s), as numeric(.,4).
_SERVERS = """
srv AS (
    SELECT s.id AS server_id, s.created_at,
           round(COALESCE(es.toxicity_threshold::numeric, %(threshold)s::numeric), 4) AS threshold
    FROM servers s LEFT JOIN server_enrichment_settings es ON es.server_id = s.id
    WHERE s.deleted_at IS NULL
)"""


def _messages_cte(lo: str, hi: str) -> str:
    """CTEs ``msg`` (human server messages created in [lo, hi)), ``la`` (their latest
    analysis) and ``resp`` (ids of those others responded to)."""
    return f"""
msg AS (
    SELECT c.server_id, m.author_id, m.id, m.created_at,
           (m.created_at AT TIME ZONE 'UTC')::date AS day,
           m.deleted_at IS NULL AS live,
           COALESCE(char_length(m.content), 0) >= 40 AS substantive
    FROM messages m
    JOIN channels c ON c.id = m.channel_id AND c.server_id IS NOT NULL
    JOIN users u ON u.id = m.author_id AND {_HUMAN}
    WHERE m.created_at >= {lo} AND m.created_at < {hi}
),
la AS (
    SELECT DISTINCT ON (a.message_id) a.message_id, a.sentiment_score, a.toxicity_score
    FROM ai_analysis a
    WHERE a.message_created_at >= {lo} AND a.message_created_at < {hi}
    ORDER BY a.message_id, a.created_at DESC, a.model_version DESC
),
resp AS (
    SELECT r.message_id
    FROM message_reactions r
    JOIN users u ON u.id = r.user_id AND {_HUMAN}
    JOIN msg m ON m.id = r.message_id AND m.created_at = r.message_created_at
    WHERE r.message_created_at >= {lo} AND r.message_created_at < {hi}
      AND r.user_id <> m.author_id
    UNION
    SELECT rep.referenced_message_id
    FROM messages rep
    JOIN users u ON u.id = rep.author_id AND {_HUMAN}
    JOIN msg m ON m.id = rep.referenced_message_id
    WHERE rep.referenced_message_id IS NOT NULL AND rep.deleted_at IS NULL
      AND rep.created_at >= {lo} AND rep.author_id <> m.author_id
)"""


_DAY_LO = "(%(first)s::date::timestamp AT TIME ZONE 'UTC')"
_DAY_HI = "((%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC')"

HEALTH_UPSERT = f"""
WITH {_SERVERS},
days AS (
    SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
),
{_messages_cte(_DAY_LO, _DAY_HI)},
agg AS (
    SELECT m.server_id, m.day,
           count(*) AS message_count,
           count(DISTINCT m.author_id) AS active_users,
           count(*) FILTER (WHERE la.sentiment_score >= 0.25) AS positive,
           count(la.sentiment_score) AS scored,
           count(*) FILTER (WHERE la.toxicity_score >= srv.threshold) AS toxic,
           count(resp.message_id) AS responded
    FROM msg m
    JOIN srv ON srv.server_id = m.server_id
    LEFT JOIN la ON la.message_id = m.id
    LEFT JOIN resp ON resp.message_id = m.id
    GROUP BY m.server_id, m.day
),
mods AS (
    SELECT server_id, (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM moderation_events
    WHERE created_at >= {_DAY_LO} AND created_at < {_DAY_HI}
    GROUP BY 1, 2
)
INSERT INTO community_health AS ch (
    server_id, date, active_users, message_count, positive_sentiment_ratio,
    toxicity_incidents, moderation_actions, engagement_score, health_score)
SELECT srv.server_id, days.day,
       COALESCE(agg.active_users, 0),
       COALESCE(agg.message_count, 0),
       round(agg.positive::numeric / NULLIF(agg.scored, 0), 2),
       COALESCE(agg.toxic, 0),
       COALESCE(mods.n, 0),
       round(100 * agg.responded::numeric / NULLIF(agg.message_count, 0), 2),
       -- 0.40·P + 0.35·S + 0.25·E as ONE exact fraction (P = pn/pd, S = sn/n, E = responded/n),
       -- so a value exactly on a rounding tie rounds like the exact formula says
       round((40::numeric * p.pn * agg.message_count + 35 * p.sn * p.pd + 25 * agg.responded * p.pd)
             / NULLIF(100 * p.pd * agg.message_count, 0), 2)
FROM srv CROSS JOIN days
LEFT JOIN agg ON agg.server_id = srv.server_id AND agg.day = days.day
LEFT JOIN mods ON mods.server_id = srv.server_id AND mods.day = days.day
CROSS JOIN LATERAL (
    SELECT CASE WHEN agg.scored > 0 THEN agg.positive ELSE 1 END::bigint AS pn,
           CASE WHEN agg.scored > 0 THEN agg.scored ELSE 2 END::bigint AS pd,
           GREATEST(0, agg.message_count - 10 * agg.toxic)::bigint AS sn
) p
WHERE srv.created_at < (days.day + 1)::timestamp AT TIME ZONE 'UTC'
   OR agg.server_id IS NOT NULL OR mods.server_id IS NOT NULL
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

REPUTATION_UPSERT = f"""
WITH {_SERVERS},
{_messages_cte(_WIN_LO, _WIN_HI)},
daily AS (
    SELECT m.server_id, m.author_id AS user_id, m.day,
           count(*) FILTER (WHERE m.live AND resp.message_id IS NOT NULL) AS helpful,
           count(*) FILTER (WHERE m.live AND m.substantive AND la.toxicity_score < srv.threshold) AS quality
    FROM msg m
    JOIN srv ON srv.server_id = m.server_id
    LEFT JOIN la ON la.message_id = m.id
    LEFT JOIN resp ON resp.message_id = m.id
    GROUP BY 1, 2, 3
),
per_user AS (
    SELECT server_id, user_id, sum(helpful) AS helpful, sum(quality) AS quality,
           count(*) AS active_days,
           sum(LEAST(200, 10 * helpful + 2 * quality + 5)) AS points
    FROM daily GROUP BY 1, 2
),
mods AS (
    SELECT server_id, user_id,
           count(*) FILTER (WHERE kind = 'timeout') AS timeouts,
           count(*) FILTER (WHERE kind = 'message_delete') AS deletions
    FROM moderation_events
    WHERE created_at >= {_WIN_LO} AND created_at < {_WIN_HI}
    GROUP BY 1, 2
),
keys AS (
    SELECT server_id, user_id FROM per_user
    UNION SELECT server_id, user_id FROM mods
    UNION SELECT server_id, user_id FROM reputation_scores WHERE server_id IS NOT NULL
)
INSERT INTO reputation_scores AS rs (
    user_id, server_id, score, helpful_messages, quality_contributions,
    community_engagement, moderation_actions, last_calculated, updated_at)
SELECT k.user_id, k.server_id,
       GREATEST(0, COALESCE(p.points, 0) - 100 * COALESCE(mo.timeouts, 0) - 20 * COALESCE(mo.deletions, 0)),
       COALESCE(p.helpful, 0), COALESCE(p.quality, 0), COALESCE(p.active_days, 0),
       COALESCE(mo.timeouts, 0) + COALESCE(mo.deletions, 0),
       {_WIN_HI}, now()
FROM keys k
JOIN srv ON srv.server_id = k.server_id
JOIN users u ON u.id = k.user_id AND {_HUMAN}
LEFT JOIN per_user p ON p.server_id = k.server_id AND p.user_id = k.user_id
LEFT JOIN mods mo ON mo.server_id = k.server_id AND mo.user_id = k.user_id
ON CONFLICT (user_id, server_id) DO UPDATE SET
    score = EXCLUDED.score,
    helpful_messages = EXCLUDED.helpful_messages,
    quality_contributions = EXCLUDED.quality_contributions,
    community_engagement = EXCLUDED.community_engagement,
    moderation_actions = EXCLUDED.moderation_actions,
    last_calculated = EXCLUDED.last_calculated,
    updated_at = EXCLUDED.updated_at
WHERE rs.last_calculated IS NULL OR rs.last_calculated <= EXCLUDED.last_calculated
"""


def lock(conn: psycopg.Connection) -> None:
    """Wait for the rollup lock (released when the surrounding transaction ends)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))


def set_work_mem(conn: psycopg.Connection, amount: str) -> None:
    """``work_mem`` for the rest of the transaction only."""
    conn.execute("SELECT set_config('work_mem', %s, true)", (amount,))


def upsert_health(conn: psycopg.Connection, first: date, last: date, threshold: float) -> int:
    """Write ``community_health`` for every day of ``[first, last]``; rows written."""
    cur = conn.execute(HEALTH_UPSERT, {"first": first, "last": last, "threshold": threshold})
    return cur.rowcount


def upsert_reputation(conn: psycopg.Connection, as_of: date, threshold: float, window_days: int) -> int:
    """Write ``reputation_scores`` over the ``window_days`` UTC days ending ``as_of``."""
    cur = conn.execute(
        REPUTATION_UPSERT, {"as_of": as_of, "threshold": threshold, "window_days": window_days}
    )
    return cur.rowcount
