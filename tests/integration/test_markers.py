"""workers.markers on the real Redis: pending and suspect markers, the sweep lock, and
reading the head of a queue as kombu really writes it."""

from __future__ import annotations

import time
import uuid

import pytest

from enrichment_ai.embedded import redis_client
from workers import markers

pytestmark = pytest.mark.integration


@pytest.fixture
def r(redis_url):
    client = redis_client(redis_url)
    yield client
    client.close()


def test_pending_markers_expire(r):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    markers.mark_pending(r, [a], ttl_s=1)
    assert markers.pending(r, [a, b]) == {a}
    assert 0 < r.ttl(markers.PENDING + a) <= 1
    time.sleep(1.2)
    assert markers.pending(r, [a, b]) == set()


def test_suspects_record_deaths_and_lone_deaths_and_clear(r):
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    markers.record_suspects(r, {a: 1, b: 1})
    markers.record_suspects(r, {b: 2}, alone=True)
    assert markers.suspects(r, [a, b, c]) == {a: (1, False), b: (2, True)}
    markers.clear_suspects(r, [a])
    assert markers.suspects(r, [a, b, c]) == {b: (2, True)}


def test_sweep_lock_is_single_flight(r):
    r.delete(markers.SWEEP_LOCK)
    assert markers.try_sweep_lock(r, 2)
    assert not markers.try_sweep_lock(r, 2)  # a second sweep right behind the first: no-op
    r.delete(markers.SWEEP_LOCK)


def test_oldest_queued_message_id_reads_what_send_task_wrote(settings, r):
    from workers.app import create_app

    queue = f"markers-{uuid.uuid4().hex[:8]}"
    app = create_app(settings)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert markers.oldest_queued_message_id(r, queue) is None
        for mid in (first, second):
            app.send_task("enrichment.analyze_message", kwargs={"message_id": mid}, queue=queue)
        assert markers.oldest_queued_message_id(r, queue) == first  # delivered next
    finally:
        r.delete(queue)
        app.close()
