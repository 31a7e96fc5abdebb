"""SQL of the rollup state: ``activity_messages`` (per-message inputs of the formulas)
and ``activity_daily`` (per server, UTC day and person), kept current incrementally
from the ``rollup_dirty`` change log (tables and triggers: migration ``0052``).

Every statement runs inside the rollup transaction (:mod:`enrichment_ai.rollups`), after
:func:`consume_marks`; the temp tables it creates are dropped at commit. How the pieces
fit, and why no change is lost under concurrency: ``docs/metrics.md`` ("How the nightly
run stays incremental").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import psycopg

def _human(x: str) -> str:
    """SQL: user ``x`` is a person, not a bot or system account (``rollup_bots``: the
    run's snapshot of those, a handful of ids)."""
    return f"{x} NOT IN (SELECT id FROM rollup_bots)"


def _utc(day: str) -> str:
    """SQL for the timestamptz at 00:00 UTC of the date expression ``day``."""
    return f"(({day})::timestamp AT TIME ZONE 'UTC')"


def _counts(f: str, theta: str, sign: str = "1") -> str:
    """The activity_daily counts of the facts ``f`` (θ(s) = ``theta``), each row weighted ``sign``."""
    return f"""
           sum({sign}) AS messages,
           COALESCE(sum({sign}) FILTER (WHERE {f}.responded), 0) AS responded,
           COALESCE(sum({sign}) FILTER (WHERE {f}.live AND {f}.responded), 0) AS helpful,
           COALESCE(sum({sign}) FILTER (WHERE {f}.live AND {f}.substantive AND {f}.toxicity < {theta}), 0) AS quality,
           COALESCE(sum({sign}) FILTER (WHERE {f}.sentiment IS NOT NULL), 0) AS scored,
           COALESCE(sum({sign}) FILTER (WHERE {f}.sentiment >= 0.25), 0) AS positive,
           COALESCE(sum({sign}) FILTER (WHERE {f}.toxicity >= {theta}), 0) AS toxic"""


_ACTIVITY_COLS = "server_id, day, user_id, messages, responded, helpful, quality, scored, positive, toxic"
_FACT_COLS = "created_at, message_id, server_id, user_id, day, live, substantive, responded, sentiment, toxicity"
#: θ(s) of a fact row ``f`` joined LEFT to rollup_theta ``t`` (a server deleted since: the default).
_THETA = "COALESCE(t.threshold, round(%(threshold)s::numeric, 4))"

# --- the facts of messages, from the raw tables ---------------------------------------
# Two access paths with the same definitions (the equivalence test checks they agree):
# a time range (hash joins over the range) and a set of messages (index probes).
# A message's inputs: deleted or not, length class, latest analysis (latest created_at,
# highest model_version on a tie), responded = another person (not a bot) reacted, or
# replied with a reply that is not deleted and was created at or after the message.

_FACTS_RANGE = f"""
WITH msg AS (
    SELECT m.id, m.created_at, c.server_id, m.author_id,
           m.deleted_at IS NULL AS live,
           COALESCE(char_length(m.content), 0) >= 40 AS substantive
    FROM messages m
    JOIN channels c ON c.id = m.channel_id AND c.server_id IS NOT NULL
    WHERE m.created_at >= %(lo)s AND m.created_at < %(hi)s AND {_human('m.author_id')}
),
la AS (
    SELECT DISTINCT ON (a.message_id, a.message_created_at)
           a.message_id, a.message_created_at, a.sentiment_score, a.toxicity_score
    FROM ai_analysis a
    WHERE a.message_created_at >= %(lo)s AND a.message_created_at < %(hi)s
    ORDER BY a.message_id, a.message_created_at, a.created_at DESC, a.model_version DESC
),
resp AS (
    SELECT m.id, m.created_at
    FROM message_reactions r
    JOIN msg m ON m.id = r.message_id AND m.created_at = r.message_created_at
    WHERE r.message_created_at >= %(lo)s AND r.message_created_at < %(hi)s AND r.user_id <> m.author_id
      AND {_human('r.user_id')}
    UNION
    SELECT m.id, m.created_at
    FROM messages rep
    JOIN msg m ON m.id = rep.referenced_message_id
    WHERE rep.referenced_message_id IS NOT NULL AND rep.deleted_at IS NULL
      AND rep.created_at >= %(lo)s AND rep.created_at >= m.created_at AND rep.author_id <> m.author_id
      AND {_human('rep.author_id')}
)
SELECT m.created_at, m.id AS message_id, m.server_id, m.author_id AS user_id,
       (m.created_at AT TIME ZONE 'UTC')::date AS day, m.live, m.substantive,
       resp.id IS NOT NULL AS responded, la.sentiment_score AS sentiment, la.toxicity_score AS toxicity
FROM msg m
LEFT JOIN la ON la.message_id = m.id AND la.message_created_at = m.created_at
LEFT JOIN resp ON resp.id = m.id AND resp.created_at = m.created_at
"""

_FACTS_OF_SET = f"""
SELECT m.created_at, m.id AS message_id, c.server_id, m.author_id AS user_id,
       (m.created_at AT TIME ZONE 'UTC')::date AS day,
       m.deleted_at IS NULL AS live,
       COALESCE(char_length(m.content), 0) >= 40 AS substantive,
       (EXISTS (SELECT 1 FROM message_reactions r
                WHERE r.message_id = m.id AND r.message_created_at = m.created_at AND r.user_id <> m.author_id
                  AND {_human('r.user_id')})
        OR EXISTS (SELECT 1 FROM messages rep
                   WHERE rep.referenced_message_id = m.id AND rep.deleted_at IS NULL
                     AND rep.created_at >= m.created_at AND rep.author_id <> m.author_id
                     AND {_human('rep.author_id')})) AS responded,
       la.sentiment_score AS sentiment, la.toxicity_score AS toxicity
FROM rollup_late l
-- LIMIT 1: a probe of the primary key per message, never a hash join over all messages
CROSS JOIN LATERAL (
    SELECT m.id, m.created_at, m.author_id, m.channel_id, m.deleted_at, m.content FROM messages m
    WHERE m.id = l.message_id AND m.created_at = l.created_at LIMIT 1
) m
JOIN channels c ON c.id = m.channel_id AND c.server_id IS NOT NULL
LEFT JOIN LATERAL (
    SELECT a.sentiment_score, a.toxicity_score FROM ai_analysis a
    WHERE a.message_id = m.id AND a.message_created_at = m.created_at
    ORDER BY a.created_at DESC, a.model_version DESC LIMIT 1
) la ON true
WHERE {_human('m.author_id')}
"""

# --- statements of a run, in order ------------------------------------------------------

PRUNE = [
    f"DELETE FROM activity_messages WHERE created_at < {_utc('%(lo_day)s::date')}",
    "DELETE FROM activity_daily WHERE day < %(lo_day)s::date",
    "DELETE FROM rollup_days WHERE day < %(lo_day)s::date",
]

#: Take the marks of messages created before ``hi`` out of the log; keep (distinct) those
#: of stored days that are not recomputed from raw in this run: the late changes.
CONSUME_MARKS = """
CREATE TEMP TABLE rollup_late ON COMMIT DROP AS
WITH consumed AS (DELETE FROM rollup_dirty WHERE created_at < %(hi)s RETURNING message_id, created_at)
SELECT DISTINCT c.created_at, c.message_id FROM consumed c
JOIN rollup_days rd ON rd.day = (c.created_at AT TIME ZONE 'UTC')::date
WHERE rd.day >= %(lo_day)s::date AND NOT (rd.day = ANY(%(raw_days)s::date[]))
ORDER BY c.created_at, c.message_id  -- probes walk the messages' index and heap in order
"""

#: Bots and system accounts, read after the marks were taken (like every raw read).
BOTS = """
CREATE TEMP TABLE rollup_bots ON COMMIT DROP AS
SELECT id FROM users WHERE bot IS TRUE OR system IS TRUE
"""

#: θ(s) of every server (deleted ones too: their activity is kept, the outputs skip them).
THETA = """
CREATE TEMP TABLE rollup_theta ON COMMIT DROP AS
SELECT s.id AS server_id,
       round(COALESCE(es.toxicity_threshold::numeric, %(threshold)s::numeric), 4) AS threshold
FROM servers s LEFT JOIN server_enrichment_settings es ON es.server_id = s.id
"""

#: activity_daily rows (``user_id`` NULL: all of that server and day) changed outside the
#: days recomputed from raw, with their new ``messages``.
TOUCHED = "CREATE TEMP TABLE rollup_touched (server_id uuid, day date, user_id uuid, messages bigint) ON COMMIT DROP"

UNCOVERED = """
SELECT d::date FROM generate_series(%(lo_day)s::date, %(last)s::date, interval '1 day') AS d
WHERE NOT EXISTS (SELECT 1 FROM rollup_days rd WHERE rd.day = d::date)
"""

# θ(s) changed since the activity counts were made (server setting or deployment
# default): recount that server's stored days from activity_messages.
RETHETA = [
    """CREATE TEMP TABLE rollup_retheta ON COMMIT DROP AS
       SELECT t.server_id, t.threshold FROM rollup_theta t
       LEFT JOIN rollup_thresholds r ON r.server_id = t.server_id
       WHERE r.threshold IS DISTINCT FROM t.threshold""",
    """WITH gone AS (DELETE FROM activity_daily a USING rollup_retheta t WHERE a.server_id = t.server_id
                     RETURNING a.server_id, a.day)
       INSERT INTO rollup_touched (server_id, day) SELECT DISTINCT server_id, day FROM gone""",
    f"""INSERT INTO activity_daily ({_ACTIVITY_COLS})
        SELECT f.server_id, f.day, f.user_id, {_counts('f', 't.threshold')}
        FROM activity_messages f JOIN rollup_retheta t ON t.server_id = f.server_id
        GROUP BY f.server_id, f.day, f.user_id""",
    """INSERT INTO rollup_thresholds (server_id, threshold) SELECT server_id, threshold FROM rollup_retheta
       ON CONFLICT (server_id) DO UPDATE SET threshold = EXCLUDED.threshold""",
    "DELETE FROM rollup_thresholds r WHERE NOT EXISTS (SELECT 1 FROM rollup_theta t WHERE t.server_id = r.server_id)",
]

# Late changes: marked messages of stored days (not recomputed from raw in this run) are
# recomputed by index probes; their stored inputs are taken out, and the difference
# between new and stored inputs is added to activity_daily; then the new inputs stored.
LATE = [
    "ANALYZE rollup_late",
    f"CREATE TEMP TABLE rollup_late_facts ON COMMIT DROP AS {_FACTS_OF_SET}",
    f"""WITH old AS (
            DELETE FROM activity_messages f USING rollup_late l
            WHERE f.created_at = l.created_at AND f.message_id = l.message_id
            RETURNING {', '.join('f.' + c.strip() for c in _FACT_COLS.split(','))}
        ), contrib AS (
            SELECT 1 AS sign, {_FACT_COLS} FROM rollup_late_facts
            UNION ALL
            SELECT -1, {_FACT_COLS} FROM old
        ), delta AS (
            SELECT c.server_id, c.day, c.user_id, {_counts('c', _THETA, 'c.sign')}
            FROM contrib c LEFT JOIN rollup_theta t ON t.server_id = c.server_id
            GROUP BY c.server_id, c.day, c.user_id
        ), up AS (
            INSERT INTO activity_daily AS a ({_ACTIVITY_COLS})
            SELECT {_ACTIVITY_COLS} FROM delta
            WHERE (messages, responded, helpful, quality, scored, positive, toxic) <> (0, 0, 0, 0, 0, 0, 0)
            ON CONFLICT (server_id, day, user_id) DO UPDATE SET
                messages = a.messages + EXCLUDED.messages,
                responded = a.responded + EXCLUDED.responded,
                helpful = a.helpful + EXCLUDED.helpful,
                quality = a.quality + EXCLUDED.quality,
                scored = a.scored + EXCLUDED.scored,
                positive = a.positive + EXCLUDED.positive,
                toxic = a.toxic + EXCLUDED.toxic
            RETURNING a.server_id, a.day, a.user_id, a.messages
        )
        INSERT INTO rollup_touched SELECT server_id, day, user_id, messages FROM up""",
    # a person without messages left that day has no row
    """DELETE FROM activity_daily a USING rollup_touched t
       WHERE t.messages <= 0 AND a.server_id = t.server_id AND a.day = t.day AND a.user_id = t.user_id""",
    f"INSERT INTO activity_messages ({_FACT_COLS}) SELECT {_FACT_COLS} FROM rollup_late_facts",
]

# Days recomputed from the raw tables, one contiguous range [first, last] at a time.
RAW_RANGE = [
    f"""DELETE FROM activity_messages
        WHERE created_at >= {_utc('%(first)s::date')} AND created_at < {_utc('%(last)s::date + 1')}""",
    "DELETE FROM activity_daily WHERE day BETWEEN %(first)s::date AND %(last)s::date",
    f"""WITH f AS (
            INSERT INTO activity_messages ({_FACT_COLS})
            {_FACTS_RANGE.replace('%(lo)s', _utc('%(first)s::date')).replace('%(hi)s', _utc('%(last)s::date + 1'))}
            RETURNING {_FACT_COLS}
        )
        INSERT INTO activity_daily ({_ACTIVITY_COLS})
        SELECT f.server_id, f.day, f.user_id, {_counts('f', _THETA)}
        FROM f LEFT JOIN rollup_theta t ON t.server_id = f.server_id
        GROUP BY f.server_id, f.day, f.user_id
        ORDER BY f.server_id, f.day, f.user_id  -- a (server, day) on few pages: health reads it so""",
    """INSERT INTO rollup_days (day)
       SELECT d::date FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
       ON CONFLICT (day) DO UPDATE SET computed_at = now()""",
]


def prune(conn: psycopg.Connection, lo_day: date) -> None:
    """Drop the state of days before ``lo_day`` (older than any window still needed)."""
    for stmt in PRUNE:
        conn.execute(stmt, {"lo_day": lo_day})


def start(conn: psycopg.Connection, threshold: float) -> None:
    """Snapshot θ(s) (``rollup_theta``) and create the run's ``rollup_touched``."""
    conn.execute(THETA, {"threshold": threshold})
    conn.execute(TOUCHED)


def consume_marks(conn: psycopg.Connection, last: date, lo_day: date, raw_days: list[date]) -> int:
    """Take the marks of messages created through UTC day ``last`` out of the log;
    those of stored days not in ``raw_days`` go to ``rollup_late``. Returns how many.
    Every read of the raw tables must come after this (docs/metrics.md, concurrency)."""
    conn.execute(CONSUME_MARKS, {"hi": _day_start(last, 1), "lo_day": lo_day, "raw_days": raw_days})
    conn.execute(BOTS)
    return conn.execute("SELECT count(*) FROM rollup_late").fetchone()[0]


def uncovered_days(conn: psycopg.Connection, lo_day: date, last: date) -> list[date]:
    """Days of ``[lo_day, last]`` the state does not hold."""
    return [r[0] for r in conn.execute(UNCOVERED, {"lo_day": lo_day, "last": last})]


def recount_changed_thresholds(conn: psycopg.Connection) -> None:
    """Recount the stored days of servers whose θ(s) changed since they were counted."""
    for stmt in RETHETA:
        conn.execute(stmt)


#: random_page_cost while the late messages are looked up: a few thousand messages by key
#: are index probes; with the default (4, for spinning disks) they get planned as hash
#: joins over whole tables. Only for these statements: the range passes need the default.
LATE_RANDOM_PAGE_COST = "1.1"


def apply_late_changes(conn: psycopg.Connection, threshold: float) -> None:
    """Recompute the messages of ``rollup_late`` and fold the change into activity_daily."""
    cost = conn.execute("SELECT current_setting('random_page_cost')").fetchone()[0]
    conn.execute("SELECT set_config('random_page_cost', %s, true)", (LATE_RANDOM_PAGE_COST,))
    for stmt in LATE:
        conn.execute(stmt, {"threshold": threshold})
    conn.execute("SELECT set_config('random_page_cost', %s, true)", (cost,))


def recompute_range(conn: psycopg.Connection, first: date, last: date, threshold: float) -> None:
    """Recompute every day of ``[first, last]`` from the raw tables (one pass)."""
    params = {"first": first, "last": last, "threshold": threshold}
    for stmt in RAW_RANGE:
        conn.execute(stmt, params)


def _day_start(day: date, offset: int = 0) -> datetime:
    return datetime.combine(day + timedelta(days=offset), time(0), tzinfo=timezone.utc)
