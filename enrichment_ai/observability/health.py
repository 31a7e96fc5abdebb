"""The checks behind ``enrichment-ai health``: database, broker, workers, queues, last batch.

Each check returns a :class:`Check` (never raises): a container health check calls the
command every few seconds and wants one line per check and an exit code, not a traceback.

* ``db`` — connect (short timeout), the schema is migrated;
* ``broker`` — Redis answers PING;
* ``workers`` — for each queue, at least one worker that consumes it answers a remote-
  control ``active_queues`` (Celery's ``inspect``; the reply is the ping) — or, with
  ``worker``, that named worker answers and consumes each queue;
* ``queues`` — each queue's depth (LLEN) is at most ``max_queue_depth``;
* ``batch`` — the last committed batch of each queue (written by the worker to Redis,
  :data:`~.metrics.LAST_BATCH_KEY`) is at most ``max_batch_age_s`` old *while events wait*:
  an idle queue is healthy however old its last batch;
* ``roles`` — the least-privilege roles (migration 0060) exist (opt-in).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from enrichment_ai.config import Settings
from enrichment_ai.observability.redact import mask_url

#: Checks run when none are chosen (``roles`` is opt-in).
DEFAULT_CHECKS = ("db", "broker", "workers", "queues", "batch")
ALL_CHECKS = (*DEFAULT_CHECKS, "roles")
LAST_BATCH_KEY = "enrichment:last_batch:{queue}"  # same as metrics.LAST_BATCH_KEY (no prometheus import)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name:8} {self.detail}"


def check_db(settings: Settings, timeout_s: float) -> Check:
    import psycopg

    from enrichment_ai import db

    where = mask_url(settings.database_url)
    try:
        with psycopg.connect(settings.database_url, connect_timeout=max(1, int(timeout_s)),
                             autocommit=True) as conn:
            row = conn.execute("SELECT current_user, (SELECT max(version) FROM schema_migrations)").fetchone()
            pending = db.pending_migrations(conn)
    except Exception as exc:  # noqa: BLE001
        return Check("db", False, f"{where}: {_one_line(exc)}")
    if row[1] is None:
        return Check("db", False, f"{where}: not migrated (run enrichment-ai migrate)")
    if pending:  # this code expects tables or columns the database does not have yet
        return Check("db", False, f"{where}: schema {row[1]}, {len(pending)} migration(s) pending "
                                  f"({', '.join(pending)}): run enrichment-ai migrate")
    return Check("db", True, f"as {row[0]}, schema {row[1]}")


def check_roles(settings: Settings, timeout_s: float) -> Check:
    import psycopg

    from enrichment_ai.db import roles

    try:
        with psycopg.connect(settings.database_url, connect_timeout=max(1, int(timeout_s))) as conn:
            missing, mine = roles.missing_roles(conn), roles.roles_of_current_user(conn)
    except Exception as exc:  # noqa: BLE001
        return Check("roles", False, _one_line(exc))
    if missing:
        return Check("roles", False, f"missing roles {', '.join(missing)} (docs/operations.md)")
    return Check("roles", True, f"all present; connected user has {', '.join(mine) or 'none of them'}")


def check_broker(redis) -> Check:
    try:
        redis.ping()
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, _one_line(exc))
    return Check("broker", True, "PONG")


def check_workers(app, queues: Sequence[str], worker: str | None, timeout_s: float) -> Check:
    """A worker of each queue answers (``inspect().active_queues()``)."""
    dest = [worker.replace("%h", socket.gethostname())] if worker else None
    try:
        replies = app.control.inspect(timeout=timeout_s, destination=dest).active_queues() or {}
    except Exception as exc:  # noqa: BLE001
        return Check("workers", False, _one_line(exc))
    by_queue = {q: sorted(h for h, qs in replies.items() if any(x.get("name") == q for x in qs or []))
                for q in queues}
    missing = [q for q, hosts in by_queue.items() if not hosts]
    if missing:
        who = f"worker {dest[0]}" if dest else "no worker"
        return Check("workers", False, f"{who} answered for queue(s) {', '.join(missing)} "
                                       f"({len(replies)} worker(s) answered)")
    return Check("workers", True, "; ".join(f"{q}: {', '.join(h)}" for q, h in by_queue.items()))


def check_queues(depths: dict[str, int], max_depth: int) -> Check:
    over = {q: n for q, n in depths.items() if n > max_depth}
    detail = ", ".join(f"{q}={n}" for q, n in depths.items())
    if over:
        return Check("queues", False, f"{detail} (over {max_depth})")
    return Check("queues", True, detail)


def check_batch(redis, depths: dict[str, int], max_age_s: float) -> Check:
    parts, bad = [], False
    now = time.time()
    for q, n in depths.items():
        raw = redis.get(LAST_BATCH_KEY.format(queue=q))
        age = now - float(raw) if raw else None
        shown = "never" if age is None else f"{age:.0f}s ago"
        if n > 0 and (age is None or age > max_age_s):
            bad = True
            parts.append(f"{q}: {n} waiting, last batch {shown} (over {max_age_s:.0f}s)")
        else:
            parts.append(f"{q}: last batch {shown}" + ("" if n else " (idle)"))
    return Check("batch", not bad, "; ".join(parts))


def run_checks(settings: Settings, checks: Sequence[str], queues: Sequence[str], *,
               worker: str | None = None, timeout_s: float = 3.0, max_queue_depth: int = 10000,
               max_batch_age_s: float = 600.0) -> list[Check]:
    """Run ``checks`` (names from :data:`ALL_CHECKS`) in a fixed order."""
    from enrichment_ai.embedded import redis_client
    from enrichment_ai.observability.exporter import queue_depths

    out: list[Check] = []
    if "db" in checks:
        out.append(check_db(settings, timeout_s))
    if "roles" in checks:
        out.append(check_roles(settings, timeout_s))
    redis = redis_client(settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        broker = check_broker(redis)
        if "broker" in checks:
            out.append(broker)
        if "workers" in checks:
            out.append(_workers(settings, queues, worker, timeout_s) if broker.ok
                       else Check("workers", False, "broker unreachable"))
        if {"queues", "batch"} & set(checks):
            if not broker.ok:
                out += [Check(c, False, "broker unreachable") for c in ("queues", "batch") if c in checks]
            else:
                depths = queue_depths(redis, queues)
                if "queues" in checks:
                    out.append(check_queues(depths, max_queue_depth))
                if "batch" in checks:
                    out.append(check_batch(redis, depths, max_batch_age_s))
    finally:
        redis.close()
    return out


def _workers(settings: Settings, queues, worker, timeout_s) -> Check:
    from workers.app import create_app

    app = create_app(settings)
    try:
        return check_workers(app, queues, worker, timeout_s)
    finally:
        app.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return mask_url(text)[:300]
