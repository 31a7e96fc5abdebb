"""SQL of conversation summaries: which channels are due, a channel's window, the write.

A window is the channel's analysed, non-deleted (and, with ``skip_bots``, human)
messages after its last summary's ``(end_at, end_message_id)``; see docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import psycopg

#: First key of the per-channel pg_advisory_xact_lock(int, int).
SUMMARY_LOCK_CLASS = 0x73756D6D  # "summ"

_NEW_MESSAGES = """
    FROM messages m
    JOIN users u ON u.id = m.author_id
    WHERE m.channel_id = ch.channel_id
      AND m.deleted_at IS NULL
      AND NOT (%(skip_bots)s AND (u.bot IS TRUE OR u.system IS TRUE))
      AND (last.end_at IS NULL OR (m.created_at, m.id) > (last.end_at, last.end_message_id))
      AND EXISTS (SELECT 1 FROM ai_analysis a
                  WHERE a.message_id = m.id AND a.message_created_at = m.created_at)
"""

_LAST = """
LEFT JOIN LATERAL (
    SELECT cs.end_at, cs.end_message_id FROM conversation_summaries cs
    WHERE cs.channel_id = ch.channel_id
    ORDER BY cs.end_at DESC NULLS LAST, cs.end_message_id DESC LIMIT 1
) last ON true
"""

CHANNELS_DUE = f"""
SELECT ch.channel_id
FROM unnest(%(ids)s::uuid[]) AS ch(channel_id)
JOIN channels c ON c.id = ch.channel_id
LEFT JOIN server_enrichment_settings es ON es.server_id = c.server_id
{_LAST}
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM (SELECT 1 {_NEW_MESSAGES} LIMIT %(enough)s) enough
) w
LEFT JOIN LATERAL (SELECT m.created_at AS first_at {_NEW_MESSAGES} ORDER BY m.created_at LIMIT 1) f ON true
LEFT JOIN LATERAL (SELECT m.created_at AS last_at {_NEW_MESSAGES} ORDER BY m.created_at DESC LIMIT 1) l ON true
WHERE COALESCE(es.summaries_enabled, true)
  AND ((w.n >= %(min_messages)s AND f.first_at <= now() - make_interval(secs => %(min_interval_s)s))
       OR (w.n >= %(min_quiet)s AND l.last_at < now() - make_interval(secs => %(quiet_s)s)))
"""
# The count stops at ``enough`` rows and first/last are index probes on
# (channel_id, created_at): the check costs the same for a window of 20 or 20,000.

WINDOW = """
WITH last AS (
    SELECT cs.end_at, cs.end_message_id FROM conversation_summaries cs
    WHERE cs.channel_id = %(channel)s
    ORDER BY cs.end_at DESC NULLS LAST, cs.end_message_id DESC LIMIT 1
), bound AS (
    SELECT (SELECT end_at FROM last) AS end_at, (SELECT end_message_id FROM last) AS end_message_id
), hold AS (
    -- the channel's first live message of the last hold_s seconds after the last summary
    -- that has neither a row nor a skip yet (in flight in another batch, waiting for a
    -- retry): the window ends before it, or it would fall behind this summary's end and
    -- into no window at all
    SELECT p.created_at, p.id
    FROM bound last
    JOIN messages p ON p.channel_id = %(channel)s
    WHERE p.deleted_at IS NULL
      AND p.created_at > now() - make_interval(secs => %(hold_s)s)
      AND (last.end_at IS NULL OR (p.created_at, p.id) > (last.end_at, last.end_message_id))
      AND NOT EXISTS (SELECT 1 FROM ai_analysis a WHERE a.message_id = p.id AND a.message_created_at = p.created_at)
      AND NOT EXISTS (SELECT 1 FROM analysis_skips s WHERE s.message_id = p.id)
    ORDER BY p.created_at, p.id LIMIT 1
)
SELECT * FROM (
    SELECT m.id, m.created_at, m.author_id,
           COALESCE(sm.nickname, u.display_name, u.username) AS author,
           COALESCE(m.content, '') AS content,
           (SELECT a.toxicity_score FROM ai_analysis a
             WHERE a.message_id = m.id AND a.message_created_at = m.created_at
             ORDER BY a.created_at DESC, a.model_version DESC LIMIT 1) AS toxicity
    FROM bound last
    JOIN messages m ON m.channel_id = %(channel)s
    JOIN channels c ON c.id = m.channel_id
    JOIN users u ON u.id = m.author_id
    LEFT JOIN server_members sm ON sm.server_id = c.server_id AND sm.user_id = m.author_id
    WHERE m.deleted_at IS NULL
      AND NOT (%(skip_bots)s AND (u.bot IS TRUE OR u.system IS TRUE))
      AND (last.end_at IS NULL OR (m.created_at, m.id) > (last.end_at, last.end_message_id))
      AND EXISTS (SELECT 1 FROM ai_analysis a
                  WHERE a.message_id = m.id AND a.message_created_at = m.created_at)
      AND NOT EXISTS (SELECT 1 FROM hold WHERE (hold.created_at, hold.id) < (m.created_at, m.id))
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT %(max_messages)s
) newest ORDER BY created_at, id
"""

RECENT_CHANNELS = """
SELECT DISTINCT m.channel_id
FROM messages m
WHERE m.created_at >= now() - make_interval(secs => %(lookback_s)s) AND m.deleted_at IS NULL
LIMIT %(limit)s
"""

THRESHOLD = """
SELECT round(COALESCE(es.toxicity_threshold::numeric, %(default)s::numeric), 4)
FROM channels c LEFT JOIN server_enrichment_settings es ON es.server_id = c.server_id
WHERE c.id = %(channel)s
"""

INSERT = """
INSERT INTO conversation_summaries (
    channel_id, start_message_id, end_message_id, start_at, end_at, summary, key_points,
    key_point_message_ids, participants, message_count, summarizer)
VALUES (%(channel)s, %(start_id)s, %(end_id)s, %(start_at)s, %(end_at)s, %(summary)s,
        %(key_points)s, %(key_ids)s, %(participants)s, %(count)s, %(summarizer)s)
ON CONFLICT (channel_id, end_message_id) DO NOTHING
RETURNING id
"""


def channels_due(
    conn: psycopg.Connection, ids: Sequence[UUID], *, min_messages: int, min_interval_s: int,
    min_quiet: int, quiet_s: int, skip_bots: bool,
) -> list[UUID]:
    """Channels of ``ids`` whose window is due: ≥ ``min_messages`` spanning at least
    ``min_interval_s`` (first message that old), or quiet after ≥ ``min_quiet``."""
    if not ids:
        return []
    rows = conn.execute(CHANNELS_DUE, {
        "ids": list(ids), "min_messages": min_messages, "min_interval_s": min_interval_s,
        "min_quiet": min_quiet, "quiet_s": quiet_s, "skip_bots": skip_bots,
        "enough": max(min_messages, min_quiet),
    })
    return [r[0] for r in rows]


def recent_channels(conn: psycopg.Connection, lookback_s: int, limit: int) -> list[UUID]:
    """Channels with a live message in the last ``lookback_s`` seconds."""
    return [r[0] for r in conn.execute(RECENT_CHANNELS, {"lookback_s": lookback_s, "limit": limit})]


def lock_channel(conn: psycopg.Connection, channel_id: UUID) -> None:
    """Per-channel lock until the transaction ends: overlapping triggers serialize."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s::text))", (SUMMARY_LOCK_CLASS, channel_id))


def window(conn: psycopg.Connection, channel_id: UUID, *, skip_bots: bool, max_messages: int,
           hold_s: int) -> list[tuple]:
    """The channel's window, oldest first (at most the newest ``max_messages``):
    rows ``(id, created_at, author_id, author, content, toxicity)``. It ends before the
    first message of the last ``hold_s`` seconds still waiting for its analysis (the next
    window starts there)."""
    params = {"channel": channel_id, "skip_bots": skip_bots, "max_messages": max_messages, "hold_s": hold_s}
    return conn.execute(WINDOW, params).fetchall()


def threshold(conn: psycopg.Connection, channel_id: UUID, default: float) -> float:
    """θ(s) of the channel's server (default when unset or no server)."""
    row = conn.execute(THRESHOLD, {"channel": channel_id, "default": default}).fetchone()
    return float(row[0]) if row else default


def insert(conn: psycopg.Connection, row: dict) -> UUID | None:
    """Write one window's summary; None when that window already has one."""
    got = conn.execute(INSERT, row).fetchone()
    return got[0] if got else None
