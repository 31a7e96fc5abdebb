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


TASKS = ["enrichment.analyze_message"]


def test_a_dead_holders_unacked_events_go_back_to_their_queue(settings, redis):
    """What a killed worker held (fetched, unacked, its pending marker naming it) is put
    back on its queue by kombu's own ``restore_by_tag`` once its alive key is gone; what
    a live holder holds stays where it is, and so does a fresh unclaimed delivery."""
    from workers.app import create_app

    queue = f"markers-{uuid.uuid4().hex[:8]}"
    app = create_app(settings)
    dead_mid, live_mid, queued_mid = (str(uuid.uuid4()) for _ in range(3))
    dead, live = markers.new_holder_id("celery@dead"), markers.new_holder_id("celery@live")
    try:
        for mid in (dead_mid, live_mid, queued_mid):
            app.send_task("enrichment.analyze_message", kwargs={"message_id": mid}, queue=queue)
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            held = [channel.basic_get(queue, no_ack=False) for _ in range(3)]  # in kombu's unacked hash
            tags = {markers.envelope_message_id(m._raw): m.delivery_tag for m in held}
            assert set(tags) == {dead_mid, live_mid, queued_mid} and redis.llen(queue) == 0
            markers.heartbeat(redis, dead, ttl_s=1)
            markers.heartbeat(redis, live, ttl_s=60)
            markers.mark_pending(redis, [dead_mid], 60, dead)
            markers.mark_pending(redis, [live_mid], 60, live)
            markers.mark_pending(redis, [queued_mid], 60)

            # another task's delivery, long unacked (a rollup running for minutes): never ours
            app.send_task("enrichment.nightly_rollup", args=[live_mid], queue=queue)
            held.append(channel.basic_get(queue, no_ack=False))

            def restore(tag):
                channel.qos.restore_by_tag(tag, client=redis)

            assert markers.restore_from_dead_holders(redis, restore, TASKS) == 0  # everyone alive
            assert markers.pending(redis, [dead_mid, live_mid, queued_mid]) == {dead_mid, live_mid, queued_mid}
            time.sleep(1.2)  # the dead holder's alive key expires
            assert markers.pending(redis, [dead_mid, live_mid, queued_mid]) == {live_mid, queued_mid}
            assert markers.restore_from_dead_holders(redis, restore, TASKS) == 1
            assert markers.oldest_queued_message_id(redis, queue) == dead_mid and redis.llen(queue) == 1
            assert not redis.hexists("unacked", tags[dead_mid]) and redis.hexists("unacked", tags[live_mid])
            assert dead.encode() not in redis.smembers(markers.HOLDERS)  # one pass, then forgotten
            assert markers.restore_from_dead_holders(redis, restore, TASKS) == 0
            # a delivery nobody claimed (its consumer died within 50 ms of the fetch),
            # once older than a heartbeat's TTL, is restored too; the live holder's is not
            later = time.time() + markers.ALIVE_TTL_S + 1
            assert markers.restore_from_dead_holders(redis, restore, TASKS, now=later) == 1
            assert redis.llen(queue) == 2 and redis.hexists("unacked", tags[live_mid])
            assert redis.hexists("unacked", held[-1].delivery_tag)
            # the live holder asks about its own entries: one it still holds stays; one it no
            # longer holds (its ack lost with an earlier broker connection, while a later copy
            # of the same message took over the marker) goes back, once older than the TTL;
            # one it never held may be another live consumer's delivery of the message: stays
            live_tag = str(tags[live_mid])
            assert markers.restore_from_dead_holders(redis, restore, TASKS, now=later, own=live,
                                                     held={live_tag}, earlier={live_tag}) == 0
            assert markers.restore_from_dead_holders(redis, restore, TASKS, now=later, own=live, held=set()) == 0
            assert markers.restore_from_dead_holders(redis, restore, TASKS, own=live, held=set(),
                                                     earlier={live_tag}) == 0  # too fresh
            assert markers.restore_from_dead_holders(redis, restore, TASKS, now=later, own=live, held=set(),
                                                     earlier={live_tag}) == 1
            assert not redis.hexists("unacked", live_tag) and redis.llen(queue) == 3
            for m in held:
                m.ack()  # a no-op for the restored one
    finally:
        redis.delete(queue)
        redis.delete(markers.ALIVE + live)
        redis.srem(markers.HOLDERS, live)
        app.close()


def test_a_finished_batch_clears_its_own_and_unclaimed_markers_not_another_consumers(redis):
    """The marker is per message: when a batch finishes, a marker naming another consumer
    is that consumer's live copy; deleting it made the copy look unclaimed (restored to
    the queue while it ran)."""
    mine, theirs, queued = (f"m-{uuid.uuid4()}" for _ in range(3))
    markers.mark_pending(redis, [mine], 60, "me@host/1")
    markers.mark_pending(redis, [theirs], 60, "other@host/2")
    markers.mark_pending(redis, [queued], 60)
    markers.clear_pending(redis, [mine, theirs, queued], "me@host/1")
    assert markers.pending_holders(redis, [mine, theirs, queued]) == {theirs: "other@host/2"}
    markers.clear_pending(redis, [theirs])  # no holder given: every one
    assert markers.pending_holders(redis, [theirs]) == {}
