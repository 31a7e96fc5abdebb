"""Roles after ``migrate``: the platform's own (non-owner) application role still writes its
tables, with the pipeline's triggers doing their work (0075), and ``enrichment-ai rollup``
runs as the worker role without touching the schema."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from enrichment_ai import db
from enrichment_ai.cli import rollup as rollup_cli
from enrichment_ai.config import Settings
from enrichment_ai.db import roles
from factories import Factory

pytestmark = pytest.mark.integration

#: The platform's tables (0001/0002; enrichment_apply_grants' list).
PLATFORM_TABLES = ("users", "user_sessions", "user_preferences", "servers", "server_members", "roles",
                   "member_roles", "channels", "channel_permissions", "messages", "message_reactions",
                   "message_attachments")
#: A day no rollup of the test session reaches: its change-log marks stay put.
FAR = datetime(2033, 6, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def platform_url(migrated_db: str) -> Iterator[str]:
    """A login role like the platform's application user: DML on the platform tables and
    nothing else (no ownership, no superuser, no grant on any pipeline table)."""
    name = f"platform_app_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(name)
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB").format(role))
        admin.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, PLATFORM_TABLES)), role))
    try:
        yield psycopg.conninfo.make_conninfo(migrated_db, user=name)
    finally:
        with psycopg.connect(migrated_db, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


def test_the_platform_role_writes_its_tables_and_the_triggers_still_log(platform_url, conn):
    """Every trigger the pipeline puts on the platform's tables fires for a writer that may
    touch only the platform's tables, and its rollup_dirty / moderation_events rows appear."""

    def marks(mid) -> int:
        return conn.execute("SELECT count(*) FROM rollup_dirty WHERE message_id = %s", (mid,)).fetchone()[0]

    def events(**where) -> list[tuple]:
        cond = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in where)
        return conn.execute(sql.SQL("SELECT kind, user_id, message_id, moderator_id FROM moderation_events "
                                    "WHERE {}").format(cond), tuple(where.values())).fetchall()

    with psycopg.connect(platform_url, autocommit=True) as p:
        assert p.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # truly no right of its own there
            p.execute("INSERT INTO rollup_dirty VALUES (gen_random_uuid(), now())")
        f = Factory(p)
        author, replier, moderator, reactor, muted = f.user(), f.user(), f.user(), f.user(), f.user()
        server, other_server = f.server(author), f.server(author)
        channel = f.channel(server)

        # INSERT messages (statement trigger, reply marks its target too)
        m1 = f.message(channel, author, "short", created_at=FAR)
        assert marks(m1) == 1
        m2 = uuid.uuid4()
        p.execute("INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, "
                  "referenced_message_id) VALUES (%s, %s, %s, 'a reply', %s, %s, %s)",
                  (m2, channel, replier, FAR, FAR + timedelta(minutes=1), m1))
        assert marks(m2) == 1 and marks(m1) == 2

        # UPDATE a message's content across the 40-character line
        p.execute("UPDATE messages SET content = %s WHERE id = %s", ("x" * 60, m1))
        assert marks(m1) == 3

        # reactions: INSERT, UPDATE, DELETE
        p.execute("INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name) "
                  "VALUES (%s, %s, %s, 'thumbsup')", (m1, FAR, reactor))
        assert marks(m1) == 4
        p.execute("UPDATE message_reactions SET emoji_name = 'heart' WHERE message_id = %s", (m1,))
        assert marks(m1) == 5
        p.execute("DELETE FROM message_reactions WHERE message_id = %s", (m1,))
        assert marks(m1) == 6

        # member timeouts: on INSERT and on UPDATE (server_members -> moderation_events)
        until = datetime.now(timezone.utc) + timedelta(hours=1)
        p.execute("INSERT INTO server_members (server_id, user_id, communication_disabled_until) "
                  "VALUES (%s, %s, %s)", (server, muted, until))
        p.execute("INSERT INTO server_members (server_id, user_id) VALUES (%s, %s)", (server, reactor))
        p.execute("UPDATE server_members SET communication_disabled_until = %s, updated_at = now() "
                  "WHERE server_id = %s AND user_id = %s", (until, server, reactor))
        assert events(server_id=server, kind="timeout", user_id=muted) == [("timeout", muted, None, None)]
        assert events(server_id=server, kind="timeout", user_id=reactor) == [("timeout", reactor, None, None)]

        # a moderator deletes someone's message (soft delete -> moderation_events + mark)
        p.execute("UPDATE messages SET deleted_at = now(), deleted_by = %s WHERE id = %s", (moderator, m2))
        assert events(message_id=m2) == [("message_delete", replier, m2, moderator)]
        assert marks(m2) == 2 and marks(m1) == 7  # and the message it replied to

        # an author turns bot; a channel moves to another server (row triggers on users/channels)
        before = marks(m1), marks(m2)
        p.execute("UPDATE users SET bot = true WHERE id = %s", (author,))
        assert marks(m1) == before[0] + 1
        p.execute("UPDATE channels SET server_id = %s WHERE id = %s", (other_server, channel))
        assert (marks(m1), marks(m2)) == (before[0] + 2, before[1] + 1)

        # a hard DELETE, cascading to the pipeline's ai_analysis row (written here as the pipeline)
        conn.execute("INSERT INTO ai_analysis (message_id, message_created_at, model_version) "
                     "VALUES (%s, %s, 'test')", (m1, FAR))
        n = marks(m1)
        p.execute("DELETE FROM messages WHERE id = %s", (m1,))
        assert marks(m1) >= n + 2  # the message's own trigger and ai_analysis's, via the cascade
        assert conn.execute("SELECT count(*) FROM ai_analysis WHERE message_id = %s", (m1,)).fetchone() == (0,)


def test_every_trigger_on_the_platform_tables_runs_as_the_migrator(conn):
    """A pipeline trigger on a platform table must not run with the writer's rights (0075)."""
    rows = conn.execute(
        """SELECT c.relname, t.tgname, f.proname, f.prosecdef, f.proconfig, pg_get_userbyid(f.proowner),
                  has_function_privilege('public', f.oid, 'EXECUTE')
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc f ON f.oid = t.tgfoid
           WHERE NOT t.tgisinternal AND c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace""",
        (list(PLATFORM_TABLES),)).fetchall()
    assert {r[0] for r in rows} >= {"messages", "message_reactions", "server_members", "users", "channels"}
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    for table, trigger, func, definer, config, owner, public_exec in rows:
        where = f"{table}.{trigger} -> {func}()"
        assert definer, f"{where} is not SECURITY DEFINER"
        assert f"search_path={schema}, pg_temp" in (config or []), f"{where}: search_path {config}"
        assert owner == roles.MIGRATOR, f"{where} belongs to {owner}"
        assert not public_exec, f"{where}: EXECUTE for PUBLIC"


def _rollup_args(day: date) -> argparse.Namespace:
    return argparse.Namespace(date=day, first=None, last=None)


def test_rollup_command_runs_as_the_worker_role(fresh_db, redis_url, tmp_path, capsys):
    """``enrichment-ai rollup`` as enrichment_worker (what compose and beat use) on a
    migrated database: no DDL needed, the day's health row is written."""
    day = date(2032, 2, 3)
    with db.connect(fresh_db) as c:
        db.migrate(c)
        f = Factory(c)
        channel = f.channel()
        for i in range(3):
            f.message(channel, content=f"message {i} of the rolled-up day",
                      created_at=datetime(2032, 2, 3, 10, i, tzinfo=timezone.utc))
    settings = Settings(database_url=roles.login_url(fresh_db, roles.WORKER), redis_url=redis_url,
                        data_dir=tmp_path)
    assert rollup_cli.run(_rollup_args(day), settings) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)
    with db.connect(fresh_db) as c:
        assert c.execute("SELECT count(*) FROM community_health WHERE date = %s", (day,)).fetchone()[0] >= 1


def test_rollup_command_refuses_a_stale_schema_and_does_not_migrate(fresh_db, redis_url, tmp_path, capsys):
    """A schema with a pending migration: the rollup says to run ``enrichment-ai migrate``
    and changes nothing (even where it could: here it runs as the database's owner)."""
    day = date(2032, 2, 3)
    latest = db.migrations()[-1].version
    with db.connect(fresh_db) as c:
        db.migrate(c)
        c.execute("DELETE FROM schema_migrations WHERE version = %s", (latest,))
    settings = Settings(database_url=fresh_db, redis_url=redis_url, data_dir=tmp_path)
    assert rollup_cli.run(_rollup_args(day), settings) == 1
    err = capsys.readouterr().err
    assert "enrichment-ai migrate" in err and latest in err, err
    # `enrichment-ai health` says so too: this code expects a schema the database lacks
    from enrichment_ai.observability.health import check_db

    check = check_db(settings, 5)
    assert not check.ok and latest in check.detail and "enrichment-ai migrate" in check.detail
    with db.connect(fresh_db) as c:
        assert latest not in db.applied_migrations(c)
        assert c.execute("SELECT count(*) FROM community_health").fetchone() == (0,)
        c.execute("DROP TABLE schema_migrations")  # now: a database never migrated
    # as the worker: the same answer, not a permission error from trying to migrate
    settings = Settings(database_url=roles.login_url(fresh_db, roles.WORKER), redis_url=redis_url,
                        data_dir=tmp_path)
    assert rollup_cli.run(_rollup_args(day), settings) == 1
    assert "enrichment-ai migrate" in capsys.readouterr().err
