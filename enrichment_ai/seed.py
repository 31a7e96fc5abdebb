"""Synthetic chat activity for demos, reports and the rollup benchmark.

:func:`seed` fills the platform tables (users, servers, channels, members, messages,
reactions, replies, ai_analysis rows, timeouts and moderator deletions) with realistic,
skewed activity over the last ``days`` UTC days, entirely server-side (SQL in
:mod:`enrichment_ai.db.seed_sql`). Every run gets its own ``tag`` so runs never collide.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from enrichment_ai.db import seed_sql

#: (text, sentiment the seeded "analysis" gives it)
TEXTS: tuple[tuple[str, float], ...] = (
    ("Has anyone tried the new release? The install was painless for me.", 0.6),
    ("I keep getting a timeout when the build runs the integration tests.", -0.3),
    ("Try clearing the cache first, that fixed the same error for me last week.", 0.4),
    ("Thanks, that worked! You saved my afternoon.", 0.9),
    ("Here is my latest project, feedback welcome: a tiny synth in the browser.", 0.5),
    ("The docs for the config file are confusing, the examples contradict each other.", -0.5),
    ("I opened an issue with a minimal reproduction, link in the thread.", 0.1),
    ("Meetup this Saturday at the usual place, bring your projects!", 0.7),
    ("Does anyone know a good beginner tutorial for this?", 0.0),
    ("The pinned guide in the help channel is the best place to start.", 0.4),
    ("Our server hit 5000 members today, thank you all for being here.", 0.9),
    ("Performance dropped after the update, CPU usage doubled on my machine.", -0.6),
    ("Rolling back to the previous version solved the CPU spike for me.", 0.2),
    ("I wrote a small script that automates the whole setup, sharing it here.", 0.6),
    ("Great explanation, I finally understand how the scheduler works.", 0.8),
    ("Is the event still happening? The announcement channel says nothing.", -0.1),
    ("Please keep the discussion on topic, use off-topic for memes.", 0.0),
    ("lol", 0.3),
    ("good morning everyone", 0.5),
    ("+1", 0.2),
    ("same here", 0.0),
    ("haha nice", 0.6),
    ("brb", 0.0),
    ("Can someone review my pull request? It adds tests for the parser.", 0.2),
    ("The new moderation rules are fair, thanks to the team for writing them.", 0.7),
    ("I disagree with the decision to remove the voice channels.", -0.4),
    ("My order arrived broken and support has not answered in a week.", -0.8),
    ("Welcome to the new folks! Introduce yourselves in general.", 0.8),
)
TOXIC_TEXTS: tuple[str, ...] = (
    "You are an idiot and nobody here wants your garbage opinions.",
    "Shut up, your projects are trash and so are you.",
    "What a pathetic loser, get lost.",
    "This community is full of morons, I hate all of you.",
)
NAMES: tuple[str, ...] = (
    "maya", "leo", "aiko", "omar", "sofia", "noah", "zara", "ivan", "lena", "kofi", "ines",
    "raj", "emma", "yusuf", "mila", "tom", "nia", "pablo", "hana", "finn", "amara", "jonas",
    "priya", "lucas", "sara", "chen", "olga", "diego", "freya", "sami",
)


@dataclass(frozen=True)
class SeedResult:
    tag: str
    messages: int
    toxic: int
    users: int
    servers: int
    first: datetime
    last: datetime
    seconds: float


def seed(
    conn: psycopg.Connection,
    messages: int,
    *,
    servers: int = 10,
    days: int = 30,
    users: int | None = None,
    tag: str | None = None,
    end: datetime | None = None,
) -> SeedResult:
    """Insert ``messages`` messages over the ``days`` UTC days before ``end`` (default:
    the start of today, UTC), in one transaction. Returns what was made."""
    if messages < 1 or servers < 1 or days < 1:
        raise ValueError("messages, servers and days must be positive")
    users = users or max(servers * 5, messages // 40)
    tag = tag or uuid.uuid4().hex[:6]
    end = end or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "tag": tag, "servers": servers, "users": users, "messages": messages, "days": days,
        "start": end - timedelta(days=days),
        "texts": [t for t, _ in TEXTS], "text_sentiment": [s for _, s in TEXTS],
        "toxic_texts": list(TOXIC_TEXTS), "names": list(NAMES),
    }
    t0 = time.perf_counter()
    with conn.transaction():
        for stmt in (seed_sql.USERS, seed_sql.SERVERS, seed_sql.CHANNELS, seed_sql.MEMBERS,
                     seed_sql.MESSAGES, seed_sql.INSERT_MESSAGES, seed_sql.INSERT_ANALYSES,
                     seed_sql.INSERT_REACTIONS, seed_sql.MODERATE, seed_sql.TIMEOUTS):
            conn.execute(stmt, params)
        n, toxic, first, last = conn.execute(seed_sql.COUNTS).fetchone()
    conn.execute("ANALYZE messages; ANALYZE ai_analysis; ANALYZE message_reactions")
    return SeedResult(tag, n, toxic, users, servers, first, last, time.perf_counter() - t0)


def seeded_servers(conn: psycopg.Connection, tag: str, servers: int) -> list[tuple[str, str]]:
    """(id, name) of the servers a run made."""
    ids = [str(uuid.UUID(hashlib.md5(f"s{tag}{s}".encode()).hexdigest())) for s in range(servers)]
    rows = conn.execute("SELECT id::text, name FROM servers WHERE id = ANY(%s::uuid[]) ORDER BY name", (ids,))
    return rows.fetchall()
