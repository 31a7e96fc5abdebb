"""SQL the health report reads (``community_health``, ``reputation_scores``)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import psycopg

SERVER = "SELECT name FROM servers WHERE id = %(server)s"

DAILY = """
SELECT date, active_users, message_count, positive_sentiment_ratio, toxicity_incidents,
       moderation_actions, engagement_score, health_score
FROM community_health
WHERE server_id = %(server)s AND date BETWEEN %(first)s AND %(last)s
ORDER BY date
"""

LATEST_DAY = "SELECT max(date) FROM community_health WHERE server_id = %(server)s"

TOP = """
SELECT COALESCE(sm.nickname, u.display_name, u.username) AS name, r.score, r.helpful_messages,
       r.quality_contributions, r.community_engagement, r.moderation_actions, r.last_calculated
FROM reputation_scores r
JOIN users u ON u.id = r.user_id
LEFT JOIN server_members sm ON sm.server_id = r.server_id AND sm.user_id = r.user_id
WHERE r.server_id = %(server)s AND r.score > 0
ORDER BY r.score DESC, r.helpful_messages DESC, name
LIMIT %(limit)s
"""


def server_name(conn: psycopg.Connection, server_id: UUID) -> str | None:
    row = conn.execute(SERVER, {"server": server_id}).fetchone()
    return row[0] if row else None


def latest_day(conn: psycopg.Connection, server_id: UUID) -> date | None:
    return conn.execute(LATEST_DAY, {"server": server_id}).fetchone()[0]


def daily(conn: psycopg.Connection, server_id: UUID, first: date, last: date) -> list[tuple]:
    return conn.execute(DAILY, {"server": server_id, "first": first, "last": last}).fetchall()


def top_contributors(conn: psycopg.Connection, server_id: UUID, limit: int = 10) -> list[tuple]:
    return conn.execute(TOP, {"server": server_id, "limit": limit}).fetchall()
