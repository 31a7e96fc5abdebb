"""Short-lived delivery state kept in Redis (the broker's server), beside the queues.

Three kinds of key, all with a TTL so nothing here is left behind by a crash:

* ``enrichment:pending:<message_id>`` — an ``analyze_message`` event for the message
  was enqueued by us (sweeper, ``enrichment-ai enqueue``, a retry) or handed to a pool
  process by a consumer, and is queued or in flight. The sweeper leaves such messages
  alone, so it never re-enqueues what is still on its way. TTL: the visibility timeout
  plus a margin — after that an unacked event would have been redelivered anyway.
  Deleted by the consumer once the event's batch committed and was acked
  (:func:`clear_pending`): left to the TTL, an hour of a live stream's markers sat in
  Redis (~150 bytes per message: +30 MiB in the 45-minute soak at 64 msgs/s,
  docs/metrics.md). A batch that failed keeps them: the hour is then the sweeper's
  back-off before it re-sends the message.
* ``enrichment:suspect:<message_id>`` — the number of pool-process deaths this
  message's batches suffered, with ``a`` appended once it died running *alone* (then
  it is poison, not a batch-mate of poison). Written by the consumer process *the moment* it learns a
  pool process died (it knows which events the lost batch held), read by every consumer
  before it batches an event, cleared when the message commits. A suspect is never
  batched with strangers again (:mod:`workers.batching`). TTL: a day.
* ``enrichment:sweep:lock`` — single flight for the sweeper (``SET NX EX``).
* ``enrichment:holders`` (a set) and ``enrichment:alive:<holder>`` — every worker's
  consumer connection is a *holder* (a broker reconnect makes a new one: the old
  connection's unacked deliveries can no longer be acked): it writes its id (hostname
  and a per-connection token) as the value of the pending markers of the events it
  receives, and refreshes its alive key every :data:`HEARTBEAT_S` seconds (TTL :data:`ALIVE_TTL_S`). An event whose
  pending marker names a holder with no alive key is held by a dead worker (SIGKILL,
  OOM, a lost host): :func:`restore_from_dead_holders`, run by every live consumer on
  the same beat, puts it back on its queue at once (kombu's own ``restore_by_tag``)
  instead of after the visibility timeout — an hour by default, where a moderator waits
  for the score; and :func:`pending` no longer counts it as on its way, so the sweeper
  takes any such message that is in no queue at all.

Why Redis and not a table: this is transient delivery state that must be written from
the consumer process, which has no database connection (and must work while the
database is down); the broker's Redis is always there when events are.
Every function swallows nothing: callers decide what a Redis error means.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

PENDING = "enrichment:pending:"
SUSPECT = "enrichment:suspect:"
SWEEP_LOCK = "enrichment:sweep:lock"
SUSPECT_TTL_S = 86_400
HOLDERS = "enrichment:holders"
ALIVE = "enrichment:alive:"
#: a consumer refreshes its alive key this often …
HEARTBEAT_S = 3.0
#: … and is taken for dead this long after its last refresh. Longer than any stall of a
#: consumer's event loop (it only moves messages); short beside the visibility timeout.
ALIVE_TTL_S = 15
#: the pending-marker value of an event that is queued, not held (enqueue, retry)
QUEUED = "1"


def pending_ttl(visibility_timeout_s: int) -> int:
    """How long an enqueued or dispatched event counts as on its way."""
    return int(visibility_timeout_s) + 60


def mark_pending(redis, message_ids: Iterable[Any], ttl_s: int, holder: str = QUEUED) -> None:
    """Mark ``message_ids`` as queued (``holder`` unset) or held by the consumer
    ``holder`` for ``ttl_s`` seconds (one round trip)."""
    ids = [str(m) for m in message_ids]
    if not ids:
        return
    pipe = redis.pipeline(transaction=False)
    for mid in ids:
        pipe.set(PENDING + mid, holder, ex=ttl_s)
    pipe.execute()


#: KEYS: markers; ARGV[1]: the holder, ARGV[2]: QUEUED. Deletes what names either.
_CLEAR_UNLESS_OTHERS = """
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == ARGV[1] or v == ARGV[2] then redis.call('DEL', k) end
end
return 0
"""


def clear_pending(redis, message_ids: Iterable[Any], holder: str | None = None) -> None:
    """The events of ``message_ids`` are done (committed and acked): drop their markers
    (one round trip) — with ``holder``, only those naming it or no one (:data:`QUEUED`):
    a marker naming another consumer is its live copy of the message, and without it that
    copy looked unclaimed and was restored to the queue while it ran."""
    keys = [PENDING + str(m) for m in message_ids]
    if not keys:
        return
    if holder is None:
        redis.delete(*keys)
    else:
        redis.eval(_CLEAR_UNLESS_OTHERS, len(keys), *keys, holder, QUEUED)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def pending_holders(redis, message_ids: Sequence[Any]) -> dict[str, str]:
    """``message_id -> marker value`` (:data:`QUEUED` or a holder id) for those of
    ``message_ids`` with a live pending marker."""
    ids = [str(m) for m in message_ids]
    found: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        found.update((m, _text(v)) for m, v in zip(chunk, redis.mget([PENDING + m for m in chunk]), strict=True)
                     if v is not None)
    return found


def pending(redis, message_ids: Sequence[Any]) -> set[str]:
    """The subset of ``message_ids`` (as strings) on their way: with a pending marker
    that is queued or names a live holder (a dead holder's events are not on their way)."""
    found = pending_holders(redis, message_ids)
    dead = dead_holders(redis, {v for v in found.values() if v != QUEUED})
    return {m for m, v in found.items() if v not in dead}


# --- holders: which consumer has an event, and is it alive ------------------------------


def new_holder_id(hostname: str) -> str:
    """An id for one consumer connection: the worker's hostname (``celery@host`` is kept
    across restarts, and a container's pid too) plus a random token."""
    import uuid

    return f"{hostname}/{uuid.uuid4().hex[:12]}"


def heartbeat(redis, holder: str, ttl_s: int = ALIVE_TTL_S) -> None:
    """``holder`` is alive for the next ``ttl_s`` seconds (one round trip)."""
    pipe = redis.pipeline(transaction=False)
    pipe.sadd(HOLDERS, holder)
    pipe.set(ALIVE + holder, 1, ex=ttl_s)
    pipe.execute()


def dead_holders(redis, holders: Iterable[str]) -> set[str]:
    """Those of ``holders`` whose alive key has expired."""
    hs = sorted(set(holders))
    if not hs:
        return set()
    return {h for h, v in zip(hs, redis.mget([ALIVE + h for h in hs]), strict=True) if v is None}


def restore_from_dead_holders(redis, restore_tag, tasks: Iterable[str], unacked_key: str = "unacked",
                              unacked_index_key: str = "unacked_index", now: float | None = None,
                              own: str | None = None, held: Collection[str] = (),
                              earlier: Collection[str] = ()) -> int:
    """Put every unacked event held by a dead consumer back on its queue; return how many.

    Held by a dead consumer: its pending marker names a holder whose alive key expired,
    or it has no holder at all (no marker, or :data:`QUEUED`) although it was delivered
    more than :data:`ALIVE_TTL_S` ago — a live consumer names itself within 50 ms of a
    delivery, so that is one that died before it could (the kill came right after the
    fetch) — or, with ``own`` (the calling consumer's holder id) and ``held`` (the
    delivery tags it holds), an entry that names ``own`` but is not one of ``held``,
    delivered more than :data:`ALIVE_TTL_S` ago: the marker is per message, the entry per
    delivery, so a second delivery of a message (a retry's copy, a restored one) that
    this consumer claimed leaves the first one's entry, whose ack was lost with a broker
    connection, looking held by a live consumer — only if that entry's tag is one of
    ``earlier`` (the tags this worker's earlier connections held): else it may be another
    live consumer's delivery of the same message, which restoring ran twice. ``restore_tag(delivery_tag)`` does the
    move (kombu's ``QoS.restore_by_tag``: atomic, and a no-op for a tag already acked or
    restored by another consumer doing the same). Without a dead holder or a delivery
    older than :data:`ALIVE_TTL_S` a beat costs ``SMEMBERS`` + ``MGET`` of the holders
    and a ``ZRANGEBYSCORE`` of kombu's delivery-time index; otherwise (a backlog's
    buffered events are that old) it also reads kombu's unacked hash, bounded by the
    workers' prefetch, and reads its markers with ``MGET``. Only events of ``tasks`` (the batch tasks, which claim what they
    receive) are considered: a summary or rollup has no holder and may rightly run for
    minutes; it is left to the visibility timeout."""
    import time

    dead = dead_holders(redis, (_text(h) for h in redis.smembers(HOLDERS)))
    cutoff = (time.time() if now is None else now) - ALIVE_TTL_S
    old = {_text(t) for t in redis.zrangebyscore(unacked_index_key, 0, cutoff)}
    if not dead and not old:
        return 0
    names = set(tasks)
    tags_by_id: dict[str, list[str]] = {}
    for tag, raw in redis.hgetall(unacked_key).items():
        try:
            envelope = json.loads(raw)[0]
            if envelope.get("headers", {}).get("task") not in names:
                continue
            mid = envelope_message_id(envelope)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            continue
        if mid is not None:
            tags_by_id.setdefault(mid, []).append(_text(tag))
    holders = pending_holders(redis, list(tags_by_id))
    restored = 0
    for mid, tags in tags_by_id.items():
        holder = holders.get(mid, QUEUED)
        for tag in tags:
            if holder in dead or (tag in old and (holder == QUEUED or (holder == own and tag not in held
                                                                       and tag in earlier))):
                restore_tag(tag)
                restored += 1
    if dead:
        redis.srem(HOLDERS, *dead)  # after a full pass: nothing of theirs is left unacked
    return restored


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
        return envelope_message_id(json.loads(raw))
    except ValueError:
        return None


def envelope_message_id(envelope: dict) -> str | None:
    """The ``message_id`` of a kombu message envelope (as queued, or as kept in the
    unacked hash) of an ``analyze_message`` event; None when it is not one we can read."""
    try:
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
