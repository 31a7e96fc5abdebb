"""Nightly rollups: ``community_health`` per (server, UTC day) and ``reputation_scores``
per (person, server) over a rolling window. Formulas: ``docs/metrics.md``; SQL:
:mod:`enrichment_ai.db.rollup_sql`.

Idempotent (upserts), safe to re-run, one run at a time (transaction-level advisory
lock: a concurrent run waits, then recomputes the same rows).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import psycopg

from enrichment_ai.db import rollup_sql

#: Default toxicity threshold when a server sets none (= ``Settings.toxicity_threshold``'s default).
DEFAULT_TOXICITY_THRESHOLD = 0.8
#: Reputation counts the last 90 UTC days.
REPUTATION_WINDOW_DAYS = 90
#: Memory per sort/hash for the rollup transaction (SET LOCAL): keeps the joins in memory.
ROLLUP_WORK_MEM = "256MB"


def yesterday_utc(now: datetime | None = None) -> date:
    """The last complete UTC day: what the nightly run rolls up."""
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()


def rollup_range(
    conn: psycopg.Connection,
    first: date,
    last: date,
    *,
    toxicity_threshold: float = DEFAULT_TOXICITY_THRESHOLD,
    window_days: int = REPUTATION_WINDOW_DAYS,
) -> dict:
    """Health for every UTC day in ``[first, last]`` and reputation as of ``last``,
    in one transaction under the rollup lock. Returns counts and timings."""
    if last < first:
        raise ValueError(f"empty range: {first} > {last}")
    t0 = time.perf_counter()
    with conn.transaction():
        rollup_sql.lock(conn)
        rollup_sql.set_work_mem(conn, ROLLUP_WORK_MEM)
        waited = time.perf_counter() - t0
        health = rollup_sql.upsert_health(conn, first, last, toxicity_threshold)
        t1 = time.perf_counter()
        reputation = rollup_sql.upsert_reputation(conn, last, toxicity_threshold, window_days)
        t2 = time.perf_counter()
    return {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "health_rows": health,
        "reputation_rows": reputation,
        "lock_wait_s": round(waited, 4),
        "health_s": round(t1 - t0 - waited, 4),
        "reputation_s": round(t2 - t1, 4),
        "total_s": round(time.perf_counter() - t0, 4),
    }


def run_rollups(
    conn: psycopg.Connection,
    day: date,
    *,
    toxicity_threshold: float = DEFAULT_TOXICITY_THRESHOLD,
    window_days: int = REPUTATION_WINDOW_DAYS,
) -> dict:
    """The nightly run for UTC ``day``: its ``community_health`` rows and
    ``reputation_scores`` as of its end. Workers pass ``Settings.toxicity_threshold``."""
    return rollup_range(conn, day, day, toxicity_threshold=toxicity_threshold, window_days=window_days)
