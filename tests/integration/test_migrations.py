"""Migrations: fresh apply, no-op re-apply, concurrent migrators, any-date messages."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from enrichment_ai import db

pytestmark = pytest.mark.integration


def test_fresh_apply_then_noop(fresh_db):
    expected = [m.version for m in db.migrations()]
    assert expected[:3] == ["0001_platform", "0002_messages", "0003_pipeline"]
    with db.connect(fresh_db) as c:
        assert db.migrate(c) == expected
        assert db.applied_migrations(c) == expected
        assert db.migrate(c) == []
        tables = {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        for t in ("users", "servers", "server_members", "roles", "member_roles", "channels",
                  "messages", "message_reactions", "message_attachments", "ai_analysis",
                  "conversation_summaries", "reputation_scores", "community_health",
                  "analysis_skips", "server_enrichment_settings", "messages_default", "rejected_events"):
            assert t in tables, t
        this_month = datetime.now(timezone.utc).strftime("messages_%Y_%m")
        assert this_month in tables


def test_concurrent_migrators_apply_once(fresh_db):
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run():
        try:
            with db.connect(fresh_db) as c:
                barrier.wait()
                results.append(db.migrate(c))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    applied = [r for r in results if r]
    assert len(applied) == 1 and applied[0] == [m.version for m in db.migrations()]
    with db.connect(fresh_db) as c:
        n = c.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations").fetchone()
        assert n[0] == n[1] == len(db.migrations())


def test_messages_of_any_date_are_storable(conn, factory):
    old = datetime(2019, 3, 4, 5, 6, tzinfo=timezone.utc)
    far = datetime(2031, 12, 31, 23, 59, tzinfo=timezone.utc)
    ch, author = factory.channel(), factory.user()
    ids = [factory.message(ch, author, "old", created_at=old), factory.message(ch, author, "future", created_at=far)]
    rows = dict(conn.execute(
        "SELECT id, tableoid::regclass::text FROM messages WHERE id = ANY(%s)", (ids,)).fetchall())
    assert rows == {ids[0]: "messages_default", ids[1]: "messages_default"}
    now_id = factory.message(ch, author, "now")
    part = conn.execute("SELECT tableoid::regclass::text FROM messages WHERE id = %s", (now_id,)).fetchone()[0]
    assert part == datetime.now(timezone.utc).strftime("messages_%Y_%m")


def test_ensure_partitions_is_idempotent_and_extends(conn):
    created = db.ensure_partitions(conn, months_back=0, months_ahead=6)
    again = db.ensure_partitions(conn, months_back=0, months_ahead=6)
    assert again == []
    names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'messages_2%%'")}
    assert set(created) <= names
    assert len([n for n in names if n >= datetime.now(timezone.utc).strftime("messages_%Y_%m")]) >= 7


def test_partition_skips_month_already_in_default(fresh_db):
    # a month ahead gets a row in DEFAULT first; creating partitions later must not fail
    from factories import Factory

    with db.connect(fresh_db) as c:
        db.migrate(c, months_back=0, months_ahead=0)
        now = datetime.now(timezone.utc)
        y, m = divmod(now.month - 1 + 5, 12)
        when = datetime(now.year + y, m + 1, 10, tzinfo=timezone.utc)
        mid = Factory(c).message(created_at=when)
        created = db.ensure_partitions(c, months_back=0, months_ahead=6)
        assert when.strftime("messages_%Y_%m") not in created
        assert len(created) == 5
        part = c.execute("SELECT tableoid::regclass::text FROM messages WHERE id = %s", (mid,)).fetchone()[0]
        assert part == "messages_default"


def test_0080_bounds_summaries_written_before_0051(conn, factory):
    """A pre-0051 summary (no end_at) made its channel's next window the whole history;
    0080 gives it its messages' times (the file re-applied here to such a row)."""
    from datetime import datetime, timezone

    from enrichment_ai import db as edb

    ch = factory.channel()
    t0, t1 = (datetime(2019, 5, 1, h, tzinfo=timezone.utc) for h in (9, 10))
    first, last = (factory.message(ch, None, "old", created_at=t) for t in (t0, t1))
    conn.execute("INSERT INTO conversation_summaries (channel_id, start_message_id, end_message_id, summary,"
                 " key_points, participants, message_count) VALUES (%s, %s, %s, 's', '{}', '{}', 2)",
                 (ch, first, last))
    (m,) = [m for m in edb.migrations() if m.version == "0080_summary_window_bounds"]
    conn.execute(m.path.read_text())
    assert conn.execute("SELECT start_at, end_at FROM conversation_summaries WHERE channel_id = %s",
                        (ch,)).fetchone() == (t0, t1)
