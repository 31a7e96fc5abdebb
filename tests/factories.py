"""Tiny row builders for tests: each call inserts rows with fresh UUIDs and returns ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import psycopg


@dataclass
class Factory:
    conn: psycopg.Connection

    def user(self, *, bot: bool = False, name: str | None = None, locale: str = "en-US") -> UUID:
        uid = uuid.uuid4()
        name = name or f"u{uid.hex[:12]}"
        self.conn.execute(
            "INSERT INTO users (id, username, email, password_hash, bot, locale) VALUES (%s, %s, %s, 'x', %s, %s)",
            (uid, name[:32], f"{uid.hex}@example.test", bot, locale),
        )
        return uid

    def server(self, owner_id: UUID | None = None, *, locale: str = "en-US") -> UUID:
        sid = uuid.uuid4()
        self.conn.execute(
            "INSERT INTO servers (id, name, owner_id, preferred_locale) VALUES (%s, %s, %s, %s)",
            (sid, f"server {sid.hex[:6]}", owner_id or self.user(), locale),
        )
        return sid

    def channel(self, server_id: UUID | None = None, *, dm: bool = False) -> UUID:
        cid = uuid.uuid4()
        self.conn.execute(
            "INSERT INTO channels (id, server_id, type, name) VALUES (%s, %s, %s, %s)",
            (cid, None if dm else (server_id or self.server()), 1 if dm else 0, f"ch-{cid.hex[:6]}"),
        )
        return cid

    def message(
        self,
        channel_id: UUID | None = None,
        author_id: UUID | None = None,
        content: str | None = "hello there",
        *,
        created_at: datetime | None = None,
        deleted: bool = False,
        id: UUID | None = None,  # noqa: A002 - the column's name
    ) -> UUID:
        mid = id or uuid.uuid4()
        created_at = created_at or datetime.now(timezone.utc)
        self.conn.execute(
            "INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, deleted_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (mid, channel_id or self.channel(), author_id or self.user(), content, created_at,
             created_at, created_at if deleted else None),
        )
        return mid
