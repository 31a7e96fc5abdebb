"""workers.markers on the real Redis: pending and suspect markers, the sweep lock, and
reading the head of a queue as kombu really writes it."""

from __future__ import annotations

import time
import uuid

import pytest

from workers import markers

pytestmark = pytest.mark.integration


def test_pending_markers_expire(redis):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    markers.mark_pending(redis, [a], ttl_s=1)
    assert markers.pending(redis, [a, b]) == {a}
    assert 0 < redis.ttl(markers.PENDING + a) <= 1
    time.sleep(1.2)
    assert markers.pending(redis, [a, b]) == set()


def test_suspects_record_deaths_and_lone_deaths_and_clear(redis):
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    markers.record_suspects(redis, {a: 1, b: 1})
    markers.record_suspects(redis, {b: 2}, alone=True)
    assert markers.suspects(redis, [a, b, c]) == {a: (1, False), b: (2, True)}
    markers.clear_suspects(redis, [a])
    assert markers.suspects(redis, [a, b, c]) == {b: (2, True)}


def test_sweep_lock_is_single_flight(redis):
    redis.delete(markers.SWEEP_LOCK)
    assert markers.try_sweep_lock(redis, 2)
    assert not markers.try_sweep_lock(redis, 2)  # a second sweep right behind the first: no-op
    redis.delete(markers.SWEEP_LOCK)


def test_oldest_queued_message_id_reads_what_send_task_wrote(settings, redis):
    from workers.app import create_app

    queue = f"markers-{uuid.uuid4().hex[:8]}"
    app = create_app(settings)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert markers.oldest_queued_message_id(redis, queue) is None
        for mid in (first, second):
            app.send_task("enrichment.analyze_message", kwargs={"message_id": mid}, queue=queue)
        assert markers.oldest_queued_message_id(redis, queue) == first  # delivered next
    finally:
        redis.delete(queue)
        app.close()
