"""Read-only queries behind the CLI's live views (``enrichment-ai run`` / ``demo``).

What an operator wants to see for a set of messages: each message with its server,
channel and author names next to its analysis or its skip reason, and the summaries,
community-health and reputation rows of the servers involved. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

_ANALYSES_SQL = """
SELECT m.id AS message_id, m.created_at, s.name AS server, c.name AS channel,
       coalesce(u.display_name, u.username) AS author, m.content,
       a.language_code AS language, a.sentiment_label, a.sentiment_score AS sentiment,
       a.toxicity_score AS toxicity, a.topics, a.entities, a.model_version,
       a.details -> 'batch' ->> 'size' AS batch_size,
       a.details -> 'coverage' ->> 'sentiment' AS sentiment_coverage,
       a.details -> 'coverage' ->> 'toxicity' AS toxicity_coverage,
       coalesce(a.skip_reason, k.reason) AS skip_reason,
       coalesce(a.updated_at, k.last_seen) AS analysed_at,
       (a.message_id IS NOT NULL OR k.message_id IS NOT NULL) AS done
FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS wanted(id, ord)
JOIN messages m ON m.id = wanted.id
JOIN channels c ON c.id = m.channel_id
LEFT JOIN servers s ON s.id = c.server_id
JOIN users u ON u.id = m.author_id
LEFT JOIN LATERAL (SELECT * FROM ai_analysis a WHERE a.message_id = m.id
                   ORDER BY a.updated_at DESC LIMIT 1) a ON true
LEFT JOIN LATERAL (SELECT * FROM analysis_skips k WHERE k.message_id = m.id
                   ORDER BY k.last_seen DESC LIMIT 1) k ON true
ORDER BY wanted.ord
"""


def analyses_for(conn: psycopg.Connection, ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """One row per existing message in ``ids`` (in that order) with its latest
    analysis or skip; ``done`` is false while neither exists."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_ANALYSES_SQL, {"ids": list(ids)}))


def skips_for(conn: psycopg.Connection, ids: Sequence[UUID]) -> dict[UUID, str]:
    """Recorded skip reasons for ``ids`` (also ids that match no message)."""
    rows = conn.execute("SELECT message_id, reason FROM analysis_skips WHERE message_id = ANY(%s)",
                        (list(ids),)).fetchall()
    return {r[0]: r[1] for r in rows}


def summaries_for(conn: psycopg.Connection, channel_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Conversation summaries of ``channel_ids``, oldest first."""
    sql = """SELECT cs.id, c.name AS channel, cs.summary, cs.key_points, cs.message_count,
                    cs.created_at
             FROM conversation_summaries cs JOIN channels c ON c.id = cs.channel_id
             WHERE cs.channel_id = ANY(%s) ORDER BY cs.created_at, cs.id"""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, (list(channel_ids),)))


def health_for(conn: psycopg.Connection, server_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """``community_health`` rows of ``server_ids``, by server then day."""
    sql = """SELECT s.name AS server, h.date, h.active_users, h.message_count,
                    h.positive_sentiment_ratio, h.toxicity_incidents, h.moderation_actions,
                    h.engagement_score, h.health_score
             FROM community_health h JOIN servers s ON s.id = h.server_id
             WHERE h.server_id = ANY(%s) ORDER BY s.name, h.date"""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, (list(server_ids),)))


def reputation_for(conn: psycopg.Connection, server_ids: Sequence[UUID], limit: int = 10) -> list[dict[str, Any]]:
    """Top ``reputation_scores`` of ``server_ids``."""
    sql = """SELECT s.name AS server, coalesce(u.display_name, u.username) AS member, r.score,
                    r.helpful_messages, r.quality_contributions, r.community_engagement,
                    r.moderation_actions
             FROM reputation_scores r JOIN users u ON u.id = r.user_id
             LEFT JOIN servers s ON s.id = r.server_id
             WHERE r.server_id = ANY(%s) ORDER BY r.score DESC, member LIMIT %s"""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, (list(server_ids), limit)))


def scope_of(conn: psycopg.Connection, ids: Sequence[UUID]) -> tuple[list[UUID], list[UUID]]:
    """The channels and servers the messages ``ids`` belong to."""
    rows = conn.execute(
        """SELECT DISTINCT m.channel_id, c.server_id FROM messages m
           JOIN channels c ON c.id = m.channel_id WHERE m.id = ANY(%s)""", (list(ids),)).fetchall()
    return sorted({r[0] for r in rows}, key=str), sorted({r[1] for r in rows if r[1]}, key=str)
