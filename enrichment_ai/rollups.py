"""Nightly rollups: ``community_health`` per (server, UTC day) and ``reputation_scores``
per (person, server) over a rolling window. Formulas: ``docs/metrics.md``; SQL:
:mod:`enrichment_ai.db.activity_sql` (the incremental state) and
:mod:`enrichment_ai.db.rollup_sql` (the outputs).

A run keeps ``activity_daily`` (per server, UTC day, person) current and sums the
outputs from it: the days asked for, and any day of the reputation window the state
does not hold yet, are recomputed from the raw tables in one set-based pass; every other
day of the window only has its late-changed messages (marked by triggers in
``rollup_dirty``) recomputed. Idempotent (upserts), safe to re-run, one run at a time
(transaction-level advisory lock: a concurrent run waits, then recomputes the same rows).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import psycopg

from enrichment_ai.db import activity_sql, rollup_sql

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
    in one transaction under the rollup lock. Returns counts and timings.

    Every day of ``[first, last]`` is recomputed from the raw tables (a backfill is one
    pass); so is any day of the window ``[last - window_days + 1, last]`` the state does
    not hold yet. Late changes to the other days of the window are applied from the
    change log, and the health rows they affect (and rows whose moderation count moved)
    are restated."""
    if last < first:
        raise ValueError(f"empty range: {first} > {last}")
    lo_day = last - timedelta(days=window_days - 1)
    t0 = time.perf_counter()
    with conn.transaction():
        rollup_sql.lock(conn)
        rollup_sql.set_work_mem(conn, ROLLUP_WORK_MEM)
        waited = time.perf_counter() - t0
        activity_sql.prune(conn, lo_day)
        activity_sql.start(conn, toxicity_threshold)
        asked = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        raw_days = sorted(set(asked) | set(activity_sql.uncovered_days(conn, lo_day, last)))
        late = activity_sql.consume_marks(conn, last, lo_day, raw_days)
        activity_sql.recount_changed_thresholds(conn)
        activity_sql.apply_late_changes(conn, toxicity_threshold)
        for lo, hi in _runs(raw_days):
            activity_sql.recompute_range(conn, lo, hi, toxicity_threshold)
        t1 = time.perf_counter()
        health = rollup_sql.upsert_health(
            conn, first, last, lo_day=lo_day, restate_days=[d for d in raw_days if d < first])
        t2 = time.perf_counter()
        reputation = rollup_sql.upsert_reputation(conn, last, window_days)
        t3 = time.perf_counter()
    return {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "health_rows": health,
        "reputation_rows": reputation,
        "raw_days": len(raw_days),
        "late_messages": late,
        "lock_wait_s": round(waited, 4),
        "activity_s": round(t1 - t0 - waited, 4),
        "health_s": round(t2 - t1, 4),
        "reputation_s": round(t3 - t2, 4),
        "total_s": round(time.perf_counter() - t0, 4),
    }


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as contiguous ranges ``(first, last)``."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def run_rollups(
    conn: psycopg.Connection,
    day: date,
    *,
    toxicity_threshold: float = DEFAULT_TOXICITY_THRESHOLD,
    window_days: int = REPUTATION_WINDOW_DAYS,
) -> dict:
    """The nightly run for UTC ``day``: its ``community_health`` rows, the restated rows
    of earlier days of the window that changed late, and ``reputation_scores`` as of its
    end. Workers pass ``Settings.toxicity_threshold``."""
    return rollup_range(conn, day, day, toxicity_threshold=toxicity_threshold, window_days=window_days)
