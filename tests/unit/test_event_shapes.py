"""Event bodies a raw producer may push that Celery cannot unpack: none may raise out of
the consumer's handler (the worker exited on it, and on the restored event at every
restart) or strand the batch around it; each becomes a malformed_id event for the pool."""

from __future__ import annotations

import json
import types
import uuid

import pytest

from enrichment_ai.config import Settings
from workers.app import ANALYZE, create_app
from workers.tasks import message_id_of


class _Timer:
    def __init__(self):
        self.calls = []

    def call_after(self, _s, fn, args=(), priority=0):
        self.calls.append((fn, args))
        return types.SimpleNamespace(cancel=lambda: None)

    def call_at(self, _t, fn, args=(), priority=0):
        return self.call_after(0, fn, args)

    def call_repeatedly(self, _s, _fn):
        return types.SimpleNamespace(cancel=lambda: None)

    def run(self):  # kombu's hub logs a raising timer callback and goes on: here it fails the test
        while self.calls:
            fn, args = self.calls.pop(0)
            fn(*args)


class _Pool:
    num_processes = 1

    def __init__(self):
        self.batches, self.callbacks = [], []

    def apply_async(self, _fn, args, callback, error_callback):
        self.batches.append(args[1])
        self.callbacks.append((callback, error_callback))


class _Message:
    def __init__(self, payload, **headers):
        self.payload, self.body, self.delivery_tag = payload, json.dumps(payload), str(uuid.uuid4())
        self.headers = {"task": ANALYZE, "id": self.delivery_tag, "root_id": self.delivery_tag, "retries": 0,
                        **headers}
        self.content_type, self.content_encoding = "application/json", "utf-8"
        self.delivery_info, self.properties = {"routing_key": "cpu"}, {}


@pytest.fixture()
def consume():
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    task = app.tasks[ANALYZE]
    task.markers_redis = lambda: None
    timer, pool = _Timer(), _Pool()
    consumer = types.SimpleNamespace(pool=pool, timer=timer, hostname="w@h", event_dispatcher=None,
                                     task_consumer=None, connection_errors=(), qos=None)
    handler = task.Strategy(task, app, consumer)

    def deliver(payloads, headers=None):
        for i, p in enumerate(payloads):
            handler(_Message(p, **((headers or {}).get(i, {}))), None, lambda: None, lambda requeue=False: None, [])
        timer.run()
        return [[message_id_of(e) for e in batch] for batch in pool.batches]

    def raw(messages):
        for m in messages:
            handler(m, None, lambda: None, lambda requeue=False: None, [])
        timer.run()
        return [[message_id_of(e) for e in batch] for batch in pool.batches]

    deliver.pool, deliver.raw = pool, raw

    yield deliver
    app.close()


@pytest.mark.parametrize("bad", [
    [[], {"message_id": "x"}],  # no third element
    None,
    {"message_id": "x"},  # an object, not [args, kwargs, embed]
    [[], "oops", {}],  # kwargs not an object
    [7, {}, {}],  # args not a list
])  # fmt: skip
def test_a_body_celery_cannot_unpack_becomes_a_malformed_event_and_the_batch_goes_on(consume, bad):
    good = [str(uuid.uuid4()) for _ in range(3)]
    batches = consume([[[], {"message_id": good[0]}, {}], bad, [[], {"message_id": good[1]}, {}],
                       [[good[2]], {}, None]])
    ids = [mid for batch in batches for mid in batch]
    assert len(ids) == 4 and [i for i in ids if i in good] == good
    (odd,) = [i for i in ids if i not in good]
    assert odd.startswith("malformed event body")


def test_event_keys_are_canonical_ids():
    from workers.batching import BatchTask

    mid = uuid.uuid4()
    key = BatchTask.event_key
    assert key(None, (), {"message_id": str(mid).upper()}) == str(mid)
    assert key(None, (), {"message_id": mid.hex}) == str(mid)
    assert key(None, (), {"message_id": "not-a-uuid"}) == "not-a-uuid"


def test_count_headers_a_raw_producer_got_wrong_count_zero_and_a_bad_eta_is_malformed(consume):
    """``retries: "1st"`` raised int() in the dispatch timer (kombu only logs it): the chunk
    was stranded unacked, and as a half-open probe it stopped the consumer for good."""
    good = [str(uuid.uuid4()) for _ in range(3)]
    batches = consume([[[], {"message_id": g}, {}] for g in good],
                      headers={0: {"retries": "1st"}, 1: {"worker_lost": [1]}, 2: {"eta": "not a time"}})
    ids = [mid for batch in batches for mid in batch]
    assert good[0] in ids and good[1] in ids
    (odd,) = [i for i in ids if i not in good]  # the bad ETA: recorded as malformed, not held forever
    assert odd.startswith("malformed event body") and good[2] in odd
    events = [e for batch in consume.pool.batches for e in batch]
    assert all(e.retries == 0 for e in events)


class _QoS:
    def __init__(self, value=256):
        self.value = value

    def increment_eventually(self, n=1):
        self.value += n

    def decrement_eventually(self, n=1):
        self.value -= n


def test_a_broker_reconnect_leaves_the_old_connections_timers_and_batches_inert():
    """Celery keeps the hub's timer across a reconnect and builds a new strategy: the old
    connection's ETA releases must not take prefetch slots from the new QoS nor hand the
    pool requests of the dead channel, and its batches finishing later must not count down
    the new connection's outstanding batches (it went negative: more batches than processes)."""
    from datetime import datetime, timedelta, timezone

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    task = app.tasks[ANALYZE]
    task.markers_redis = lambda: None
    timer, pool = _Timer(), _Pool()
    pool.num_processes = 2
    old_qos, new_qos = _QoS(), _QoS()
    old = types.SimpleNamespace(pool=pool, timer=timer, hostname="w@h", event_dispatcher=None,
                                task_consumer=None, connection_errors=(), qos=old_qos)
    handler = task.Strategy(task, app, old)
    later = (datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat()
    for _ in range(3):  # retries held until their countdown ends
        handler(_Message([[], {"message_id": str(uuid.uuid4())}, {}], eta=later), None, lambda: None,
                lambda requeue=False: None, [])
    handler(_Message([[], {"message_id": str(uuid.uuid4())}, {}]), None, lambda: None, lambda requeue=False: None, [])
    pending = list(timer.calls)
    timer.calls.clear()
    for fn, args in pending:  # the old connection's flush: one batch into the pool
        if fn.__name__ == "flush":
            fn(*args)
    assert len(pool.batches) == 1 and task._outstanding == 1
    old_batch_callbacks = pool.callbacks[-1]
    # the broker connection is lost and rebuilt: a new strategy on the same task and timer
    new = types.SimpleNamespace(**{**vars(old), "qos": new_qos})
    task.Strategy(task, app, new)
    assert task._outstanding == 0
    for fn, args in pending:  # the old ETA releases and timers fire now
        fn(*args)
    timer.run()
    assert new_qos.value == 256  # no slot of the new connection taken by the old ETAs
    assert len(pool.batches) == 1  # nothing of the dead channel handed to the pool
    old_batch_callbacks[0]({"status": "done"})  # the old batch finishes under the new connection
    assert task._outstanding == 0
    app.close()


def test_live_events_go_before_buffered_backfill_events(consume):
    """The buffer may hold a prefetch of backfill events: a live event that arrives after
    them is dispatched first, not behind them."""
    history = [str(uuid.uuid4()) for _ in range(3)]
    live = str(uuid.uuid4())
    messages = [(_Message([[], {"message_id": h}, {}]), "cpu.backfill") for h in history]
    messages.append((_Message([[], {"message_id": live}, {}]), "cpu"))
    for m, queue in messages:
        m.delivery_info = {"routing_key": queue}
    batches = consume.raw([m for m, _ in messages])
    assert [mid for batch in batches for mid in batch][0] == live
