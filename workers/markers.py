"""Short-lived delivery state kept in Redis (the broker's server), beside the queues.

Three kinds of key, all with a TTL so nothing here needs cleaning up:

* ``enrichment:pending:<message_id>`` — an ``analyze_message`` event for the message
  was enqueued by us (sweeper, ``enrichment-ai enqueue``, a retry) or handed to a pool
  process by a consumer, and is queued or in flight. The sweeper leaves such messages
  alone, so it never re-enqueues what is still on its way. TTL: the visibility timeout
  plus a margin — after that an unacked event would have been redelivered anyway.
* ``enrichment:suspect:<message_id>`` — the number of pool-process deaths this
  message's batches suffered, with ``a`` appended once it died running *alone* (then
  it is poison, not a batch-mate of poison). Written by the consumer process *the moment* it learns a
  pool process died (it knows which events the lost batch held), read by every consumer
  before it batches an event, cleared when the message commits. A suspect is never
  batched with strangers again (:mod:`workers.batching`). TTL: a day.
* ``enrichment:sweep:lock`` — single flight for the sweeper (``SET NX EX``).

Why Redis and not a table: this is transient delivery state that must be written from
the consumer process, which has no database connection (and must work while the
database is down); the broker's Redis is always there when events are.
Every function swallows nothing: callers decide what a Redis error means.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

PENDING = "enrichment:pending:"
SUSPECT = "enrichment:suspect:"
SWEEP_LOCK = "enrichment:sweep:lock"
SUSPECT_TTL_S = 86_400


def pending_ttl(visibility_timeout_s: int) -> int:
    """How long an enqueued or dispatched event counts as on its way."""
    return int(visibility_timeout_s) + 60


def mark_pending(redis, message_ids: Iterable[Any], ttl_s: int) -> None:
    """Mark ``message_ids`` as queued/in flight for ``ttl_s`` seconds (one round trip)."""
    ids = [str(m) for m in message_ids]
    if not ids:
        return
    pipe = redis.pipeline(transaction=False)
    for mid in ids:
        pipe.set(PENDING + mid, 1, ex=ttl_s)
    pipe.execute()


def pending(redis, message_ids: Sequence[Any]) -> set[str]:
    """The subset of ``message_ids`` (as strings) with a live pending marker."""
    ids = [str(m) for m in message_ids]
    if not ids:
        return set()
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        found.update(m for m, v in zip(chunk, redis.mget([PENDING + m for m in chunk]), strict=True)
                     if v is not None)
    return found


def record_suspects(redis, deaths: dict[str, int], *, alone: bool = False) -> None:
    """Record ``message_id -> deaths so far`` for the events of a lost batch; ``alone``:
    the batch was that one event."""
    if not deaths:
        return
    pipe = redis.pipeline(transaction=False)
    for mid, n in deaths.items():
        pipe.set(SUSPECT + str(mid), f"{int(n)}{'a' if alone else ''}", ex=SUSPECT_TTL_S)
    pipe.execute()


def suspects(redis, message_ids: Sequence[Any]) -> dict[str, tuple[int, bool]]:
    """``message_id -> (deaths, died alone)`` for those of ``message_ids`` that are suspect."""
    ids = [str(m) for m in message_ids]
    if not ids:
        return {}
    found = {}
    for m, v in zip(ids, redis.mget([SUSPECT + m for m in ids]), strict=True):
        if v is not None:
            v = v.decode() if isinstance(v, bytes) else str(v)
            try:
                found[m] = (int(v.rstrip("a")), v.endswith("a"))
            except ValueError:
                continue
    return found


def clear_suspects(redis, message_ids: Iterable[Any]) -> None:
    """The messages committed: they were innocent batch-mates, not poison."""
    keys = [SUSPECT + str(m) for m in message_ids]
    if keys:
        redis.delete(*keys)


def try_sweep_lock(redis, ttl_s: int) -> bool:
    """True for the one sweep allowed in the next ``ttl_s`` seconds. Not released when the
    sweep ends: sweeps queued behind a backlog that arrive back to back are no-ops."""
    return bool(redis.set(SWEEP_LOCK, 1, nx=True, ex=max(1, int(ttl_s))))


def oldest_queued_message_id(redis, queue: str) -> str | None:
    """The ``message_id`` of the next event kombu will deliver from ``queue`` (a Redis
    list: kombu ``LPUSH``es and ``BRPOP``s, so the oldest is at the right end), or None
    when the queue is empty or its head is not an ``analyze_message`` event we can read.
    Everything created after that message may still be queued behind it."""
    raw = redis.lindex(queue, -1)
    if raw is None:
        return None
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        mid = kwargs.get("message_id") if isinstance(kwargs, dict) else None
        if mid is None and args:
            mid = args[0]
        return str(mid) if mid is not None else None
    except (ValueError, KeyError, TypeError):
        return None
