"""The synthetic data generator makes plausible, consistent data the rollups can use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from enrichment_ai.rollups import run_rollups
from enrichment_ai.seed import seed, seeded_servers

pytestmark = pytest.mark.integration


def test_seed_small(conn):
    res = seed(conn, 3000, servers=3, days=5)
    assert res.messages == 3000 and 0 < res.toxic < 600
    servers = seeded_servers(conn, res.tag, 3)
    assert len(servers) == 3
    ids = [s for s, _ in servers]
    n, authors, analysed, replies, deleted = conn.execute(
        """SELECT count(*), count(DISTINCT m.author_id), count(a.id), count(m.referenced_message_id),
                  count(m.deleted_at)
           FROM messages m JOIN channels c ON c.id = m.channel_id
           LEFT JOIN ai_analysis a ON a.message_id = m.id
           WHERE c.server_id = ANY(%s::uuid[])""", (ids,)).fetchone()
    assert n == 3000 and authors > 10 and 0.9 * n < analysed < n and 0.05 * n < replies < 0.25 * n and deleted > 0
    # every author is a member of the server they write in
    assert conn.execute(
        """SELECT count(*) FROM messages m JOIN channels c ON c.id = m.channel_id
           LEFT JOIN server_members sm ON sm.server_id = c.server_id AND sm.user_id = m.author_id
           WHERE c.server_id = ANY(%s::uuid[]) AND sm.id IS NULL""", (ids,)).fetchone()[0] == 0
    kinds = dict(conn.execute(
        "SELECT kind, count(*) FROM moderation_events WHERE server_id = ANY(%s::uuid[]) GROUP BY kind", (ids,)).fetchall())
    assert kinds.get("message_delete", 0) > 0 and kinds.get("timeout", 0) > 0
    day = res.last.date()
    run_rollups(conn, day)
    rows = conn.execute(
        "SELECT message_count, active_users, health_score FROM community_health WHERE server_id = ANY(%s::uuid[]) AND date = %s",
        (ids, day)).fetchall()
    assert len(rows) == 3 and sum(r[0] for r in rows) > 300 and all(r[2] is not None for r in rows)
    top = conn.execute("SELECT max(score) FROM reputation_scores WHERE server_id = ANY(%s::uuid[])", (ids,)).fetchone()[0]
    assert top > 0
    assert res.last - res.first > timedelta(days=4)
