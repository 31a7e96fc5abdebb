"""Helpers for tests that run a real Celery worker: start one exactly as users do
(``enrichment-ai worker``), and wait on real observables — rows in PostgreSQL, an
empty queue with nothing unacknowledged in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from enrichment_ai.cli.stack import Child, service_env, spawn, worker_url
from enrichment_ai.config import Settings

MODEL_LOAD_TIMEOUT_S = 300


def env_for(overrides: dict[str, Any]) -> dict[str, str]:
    """``ENRICHMENT_*`` variables for Settings field overrides."""
    return {f"ENRICHMENT_{k.upper()}": str(v) for k, v in overrides.items()}


def start_worker(settings: Settings, log_dir: Path, *, name: str, overrides: dict[str, Any],
                 extra_env: dict[str, str] | None = None, queues: str | None = None) -> Child:
    """``enrichment-ai worker --queue Q`` against ``settings``' services with ``overrides``
    (and ``extra_env``) in its environment; returns once its pool process has loaded the
    models (a background-only worker loads none: once it is ready). ``queues`` overrides
    the consumed queues (e.g. ``"cpu,background"``)."""
    queue = queues or overrides.get("queue", settings.queue)
    # as in production: the worker connects as the least-privilege role (migration 0060);
    # no metrics endpoint unless a test asks for one (several workers share this host)
    overrides = {"metrics_port": 0, **overrides}
    database_url = overrides.pop("database_url", None) or worker_url(settings.database_url)
    env = service_env(settings, database_url, settings.redis_url, ENRICHMENT_DEVICE="cpu",
                      **env_for(overrides), **(extra_env or {}))
    child = spawn(name, ["worker", "--queue", queue, "--hostname", f"{name}@%h"], env, log_dir)
    try:
        if queue != "background":
            child.wait_for_log("models loaded", MODEL_LOAD_TIMEOUT_S)
        child.wait_for_log(" ready.", MODEL_LOAD_TIMEOUT_S)
    except BaseException:
        child.kill()
        raise
    return child


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval)


def drained(redis, queue: str) -> bool:
    """``queue`` is empty and no worker holds an unacknowledged message."""
    return redis.llen(queue) == 0 and redis.hlen("unacked") == 0


def wait_drained(redis, queue: str, timeout_s: float = 120) -> None:
    wait_for(lambda: drained(redis, queue), timeout_s, f"queue {queue!r} drained, all acked")


_ROWS_SQL = """
SELECT message_id, count(*) OVER (PARTITION BY message_id), language_code, sentiment_score,
       sentiment_label, toxicity_score, topics, entities, model_version, skip_reason, details
FROM ai_analysis WHERE message_id = ANY(%s)"""
_KEYS = ("count", "language", "sentiment", "sentiment_label", "toxicity", "topics", "entities",
         "model_version", "skip_reason", "details")


def analysis_rows(conn: psycopg.Connection, ids: Sequence) -> dict:
    """``message_id -> {count, language, …}`` for the ai_analysis rows of ``ids``."""
    rows = conn.execute(_ROWS_SQL, (list(ids),)).fetchall()
    return {r[0]: dict(zip(_KEYS, r[1:], strict=True)) for r in rows}


def wait_analysed(conn: psycopg.Connection, ids: Sequence, timeout_s: float = 120) -> dict:
    """Until every id has an ai_analysis row; returns :func:`analysis_rows`."""
    ids = list(ids)

    def ready():
        rows = analysis_rows(conn, ids)
        return rows if len(rows) == len(ids) else None

    return wait_for(ready, timeout_s, f"{len(ids)} analyses")


def skip_reasons(conn: psycopg.Connection, ids: Sequence) -> dict:
    """``message_id -> reason`` recorded in analysis_skips."""
    return dict(conn.execute("SELECT message_id, reason FROM analysis_skips WHERE message_id = ANY(%s)",
                             (list(ids),)).fetchall())
