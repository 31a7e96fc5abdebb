"""The built-in sample conversation: shape, moderation actions, idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from enrichment_ai import sample
from enrichment_ai.db import store

pytestmark = pytest.mark.integration

COUNTS = """SELECT (SELECT count(*) FROM users WHERE username LIKE 'sample\\_%%'),
                   (SELECT count(*) FROM servers WHERE id = ANY(%(s)s)),
                   (SELECT count(*) FROM channels WHERE server_id = ANY(%(s)s)),
                   (SELECT count(*) FROM messages WHERE id = ANY(%(m)s)),
                   (SELECT count(*) FROM message_reactions WHERE message_id = ANY(%(m)s)),
                   (SELECT count(*) FROM server_members WHERE server_id = ANY(%(s)s))"""


def test_sample_inserts_once_and_has_what_the_demo_needs(conn):
    ids = sample.insert_sample_conversation(conn)
    servers = [sample.sample_id(f"server:{k}") for k, *_ in sample.SERVERS]
    before = conn.execute(COUNTS, {"s": servers, "m": ids}).fetchone()
    assert before == (11, 3, 8, len(sample.LINES), len(sample.REACTIONS), 19)
    assert sample.insert_sample_conversation(conn) == ids  # second run: same ids, no new rows
    assert conn.execute(COUNTS, {"s": servers, "m": ids}).fetchone() == before

    msgs = store.fetch_messages(conn, ids)
    assert len(msgs) == len(ids) == len(set(ids))
    times = [msgs[i].created_at for i in ids]
    assert times == sorted(times)
    now = datetime.now(timezone.utc)
    assert now - timedelta(days=2) <= times[0] and times[-1] < now
    assert len({t.date() for t in times}) >= 2  # a full UTC day for rollups
    per_channel: dict = {}
    for m in msgs.values():
        per_channel[m.channel_id] = per_channel.get(m.channel_id, 0) + 1
    assert max(per_channel.values()) >= 25  # enough for a conversation summary
    assert [i for i in ids if msgs[i].deleted] == [ids[sample.DELETED_LINE]]
    assert any(m.author_bot for m in msgs.values())
    texts = " ".join(m.content for m in msgs.values())
    for needle in ("¡Hola", "Bonjour", "Guten Morgen", "東京", "Привет", "idiot", "Microsoft", "Berlin"):
        assert needle in texts

    timeouts = conn.execute(
        "SELECT count(*) FROM server_members WHERE server_id = %s AND communication_disabled_until IS NOT NULL",
        (servers[0],)).fetchone()[0]
    assert timeouts == 1
    threshold = conn.execute(
        "SELECT toxicity_threshold FROM server_enrichment_settings WHERE server_id = %s", (servers[0],)).fetchone()
    assert threshold[0] == pytest.approx(0.9)
