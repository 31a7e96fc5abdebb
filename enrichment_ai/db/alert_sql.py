"""SQL of moderator alerts: per-server thresholds and readable names for flagged messages."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import psycopg

THRESHOLDS = """
SELECT s.id, round(COALESCE(es.toxicity_threshold::numeric, %(default)s::numeric), 4),
       COALESCE(es.alerts_enabled, true)
FROM unnest(%(ids)s::uuid[]) AS s(id)
LEFT JOIN server_enrichment_settings es ON es.server_id = s.id
"""

NAMES = """
SELECT x.id, c.name, COALESCE(sm.nickname, u.display_name, u.username)
FROM unnest(%(ids)s::uuid[], %(channels)s::uuid[], %(authors)s::uuid[]) AS x(id, channel_id, author_id)
JOIN channels c ON c.id = x.channel_id
JOIN users u ON u.id = x.author_id
LEFT JOIN server_members sm ON sm.server_id = c.server_id AND sm.user_id = x.author_id
"""


def thresholds(conn: psycopg.Connection, server_ids: Sequence[UUID], default: float) -> dict[UUID, float | None]:
    """θ(s) per server; None where the server turned alerts off."""
    rows = conn.execute(THRESHOLDS, {"ids": list(server_ids), "default": default})
    return {sid: (float(theta) if enabled else None) for sid, theta, enabled in rows}


def names(
    conn: psycopg.Connection, items: Sequence[tuple[UUID, UUID, UUID]]
) -> dict[UUID, tuple[str | None, str]]:
    """``{message_id: (channel name, author display name)}`` for (message, channel, author)."""
    if not items:
        return {}
    ids, channels, authors = (list(col) for col in zip(*items, strict=True))
    rows = conn.execute(NAMES, {"ids": ids, "channels": channels, "authors": authors})
    return {mid: (channel, author) for mid, channel, author in rows}
