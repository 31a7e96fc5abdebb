"""The worker under failure: kill -9 mid-batch, lost database connections, a poison
message that kills its pool process, a Redis outage.

Each test starts its own ``enrichment-ai worker`` on the ``gpu`` queue (device cpu),
so killing it never disturbs the integration tests' ``cpu`` worker. Visibility timeout
is made short through Settings so a dead worker's messages come back in seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from celery_helpers import analysis_rows, start_worker, wait_analysed, wait_drained, wait_for
from enrichment_ai.embedded import redis_client
from workers import markers

#: the kill -9 test's own background queue (for the sweep it may need)
SWEEP_QUEUE = "background-kill9"

pytestmark = pytest.mark.integration

QUEUE = "gpu"
OVERRIDES = {"queue": QUEUE, "batch_max_size": 4, "batch_max_wait_ms": 100,
             "visibility_timeout_s": 8, "task_max_retries": 5}


@pytest.fixture
def gpu_settings(settings):
    return settings.model_copy(update=OVERRIDES)


@pytest.fixture
def producer(gpu_settings):
    from workers.app import create_app

    app = create_app(gpu_settings)
    yield app
    app.close()


@pytest.fixture
def redis(redis_url):
    client = redis_client(redis_url)
    yield client
    client.close()


def delivery_state(redis, conn, ids) -> str:
    """Where the test's events are: rows done, queued, unacked, holders and their liveness."""
    from workers import markers

    holders = sorted(h.decode() if isinstance(h, bytes) else h for h in redis.smembers(markers.HOLDERS))
    dead = markers.dead_holders(redis, holders)
    marks = markers.pending_holders(redis, [str(i) for i in ids])
    return (f"rows {len(analysis_rows(conn, ids))}/{len(ids)}; queue {QUEUE}: {redis.llen(QUEUE)}; "
            f"unacked: {redis.hlen('unacked')}; holders: {[(h, h in dead) for h in holders]}; "
            f"pending markers by holder: {dict(sorted(Counter(marks.values()).items()))}")


def batches_logged(child) -> int:
    return sum(1 for line in child.log().splitlines() if "] batch " in line)


def test_kill_9_mid_batch_then_restart_analyses_every_message_once(
        gpu_settings, producer, factory, conn, redis, tmp_path):
    """The whole worker dies (consumer and pool). With a visibility timeout longer than
    the test (600 s against its 240 s of waiting), what it held can only come back
    through the holder heartbeat: a live consumer (the restarted worker, or any other
    worker on this Redis: the suite's shared one may be first) sees the dead one's alive
    key expire and restores its unacked events to their queue
    (workers.markers.restore_from_dead_holders).

    One delivery can be beyond that: kombu's Redis transport pops an event (BRPOP) and
    records it in its unacked hash afterwards (celery/celery#7950); a kill in between —
    the reply may wait in the socket buffer while the main loop acks a batch — loses that
    delivery with no trace in Redis. The database still lacks its row, so the sweeper
    re-enqueues it (after ``sweep_grace_s``); when that happens the test runs the sweep as
    beat would, on a background worker of its own (grace 0, its own background queue)."""
    overrides = {**OVERRIDES, "visibility_timeout_s": 600}
    created = time.time()
    channel = factory.channel()
    ids = [factory.message(channel, content=f"Reliability message {i}: the server was busy today.")
           for i in range(48)]
    worker = start_worker(gpu_settings, tmp_path, name="victim", overrides=overrides)
    try:
        for mid in ids:
            producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
        wait_for(lambda: batches_logged(worker) >= 1, 120, "a first committed batch")
    finally:
        worker.kill()  # SIGKILL to the worker and its pool process, mid-stream
    done_before = len(analysis_rows(conn, ids))
    assert 0 < done_before < len(ids), f"kill came too late to test anything ({done_before} done)"
    assert redis.hlen("unacked") > 0  # fetched, not acked: the dead worker's batches

    restarted = start_worker(gpu_settings, tmp_path, name="restarted", overrides=overrides)
    try:
        def settled() -> bool:  # nothing queued or unacked (twice, 1 s apart), rows in
            for _ in range(2):
                if redis.llen(QUEUE) or redis.hlen("unacked") or len(analysis_rows(conn, ids)) < len(ids) - 1:
                    return False
                time.sleep(1)
            return True

        wait_for(settled, 180, "the dead worker's events restored and analysed")
        missing = [m for m in ids if m not in analysis_rows(conn, ids)]
        if missing:  # at most the one delivery popped but not yet recorded unacked
            assert len(missing) == 1 and not markers.pending(redis, [str(m) for m in missing])
            sweeper = start_worker(gpu_settings, tmp_path, name="sweeper", queues="background",
                                   overrides={**overrides, "background_queue": SWEEP_QUEUE, "sweep_grace_s": 0})
            try:
                redis.delete(markers.SWEEP_LOCK)
                producer.send_task("enrichment.sweep", queue=SWEEP_QUEUE,
                                   kwargs={"since": datetime.fromtimestamp(created - 5, UTC).isoformat()})
                wait_analysed(conn, ids, timeout_s=90)
                assert "sweep: re-enqueued 1 messages" in sweeper.log()
            finally:
                sweeper.stop()
        rows = wait_analysed(conn, ids, timeout_s=90)
        wait_drained(redis, QUEUE, timeout_s=60)
    except AssertionError as exc:  # say why: which events are where, what the workers did
        raise AssertionError(f"{exc}\n{delivery_state(redis, conn, ids)}\n--- victim:\n"
                             f"{worker.log()[-2500:]}\n--- restarted:\n{restarted.log()[-4000:]}") from None
    finally:
        restarted.stop()
    assert all(r["count"] == 1 for r in rows.values())
    assert conn.execute("SELECT count(*) FROM ai_analysis WHERE message_id = ANY(%s)", (ids,)).fetchone()[0] == len(ids)
    assert delivery_state(redis, conn, ids).startswith(f"rows {len(ids)}/{len(ids)}; queue {QUEUE}: 0; unacked: 0;")


def test_lost_database_connections_are_retried(gpu_settings, producer, factory, conn, redis, tmp_path):
    # also the path a CUDA worker takes: every pool process loads its own models after fork
    overrides = {**OVERRIDES, "load_before_fork": False}
    worker = start_worker(gpu_settings.model_copy(update=overrides), tmp_path, name="retrier", overrides=overrides)
    try:
        warm = factory.message(content="warm-up: opens the worker's database connection")
        producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(warm)})
        wait_analysed(conn, [warm])
        # A database restart/failover from the worker's point of view: its session dies.
        with psycopg.connect(gpu_settings.database_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                (f"enrichment-worker:{QUEUE}",)).fetchone()[0]
        assert killed >= 1
        ids = [factory.message(content=f"after the outage {i}") for i in range(5)]
        for mid in ids:
            producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
        rows = wait_analysed(conn, ids, timeout_s=120)
        wait_drained(redis, QUEUE)
        assert all(r["count"] == 1 for r in rows.values())
        assert "transient error on a batch" in worker.log()
        assert "INFO/ForkPoolWorker-1] models loaded" in worker.log()
        assert worker.proc.poll() is None
    finally:
        worker.stop()


FAULTS = str(Path(__file__).resolve().parents[1] / "faults")


def test_a_message_that_kills_its_pool_process_is_quarantined_not_looped(
        gpu_settings, producer, factory, conn, redis, tmp_path):
    """One message SIGKILLs whatever process analyses it (tests/faults/sitecustomize.py).
    Its batch-mates must still be analysed once each, the poison message must end as a
    recorded ``worker_lost`` skip, the worker must keep running, and nothing may loop."""
    from celery_helpers import skip_reasons

    channel = factory.channel()
    good = [factory.message(channel, content=f"Friendly message {i} about the weekend plans.") for i in range(7)]
    poison = factory.message(channel, content="POISON-PILL: analysing this kills the process")
    # a visibility timeout longer than the test: no copy comes back through Redis's restore
    overrides = {**OVERRIDES, "visibility_timeout_s": 600}
    worker = start_worker(gpu_settings.model_copy(update=overrides), tmp_path, name="poisoned", overrides=overrides,
                          extra_env={"PYTHONPATH": FAULTS, "FAULT_POISON_MARKER": "POISON-PILL"})
    try:
        for mid in [*good[:4], poison, *good[4:]]:  # batches of 4: the poison shares one
            producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
        rows = wait_analysed(conn, good, timeout_s=240)
        reasons = wait_for(lambda: skip_reasons(conn, [poison]) or None, 240, "the poison message's skip")
        wait_drained(redis, QUEUE, timeout_s=60)
        assert worker.proc.poll() is None  # the worker survived its pool processes' deaths
        log = worker.log()
    finally:
        worker.stop()
    assert reasons == {poison: "worker_lost"}
    assert all(r["count"] == 1 for r in rows.values())
    assert analysis_rows(conn, [poison]) == {}
    assert log.count("pool process lost") == 2  # once in its batch, once alone: then quarantined
    assert "quarantined" in log
    # loaded once, in the main process before fork: the replacement processes inherit them
    assert log.count("models loaded") == 1 and "INFO/MainProcess] models loaded for the pool" in log


def test_redis_outage_then_recovery(gpu_settings, factory, conn, tmp_path):
    """The broker goes away under a running worker (its own redis-server, append-only
    file on) and comes back on the same socket: the worker must notice, stay up,
    reconnect, and analyse what is sent after the recovery, exactly once each."""
    import signal

    from enrichment_ai.embedded import _start_redis, _stop_process
    from workers.app import create_app

    sock_dir = tmp_path / "s"
    sock_dir.mkdir()
    proc, url = _start_redis(tmp_path / "redis", sock_dir)
    settings = gpu_settings.model_copy(update={"redis_url": url})
    worker = None
    try:
        worker = start_worker(settings, tmp_path, name="outage", overrides=OVERRIDES)
        app = create_app(settings)
        before = [factory.message(content=f"before the outage {i}") for i in range(3)]
        for mid in before:
            app.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
        wait_analysed(conn, before, timeout_s=120)

        _stop_process(proc, signal.SIGTERM)  # outage: the broker is gone
        wait_for(lambda: "Connection to broker lost" in worker.log() or "Cannot connect" in worker.log(),
                 60, "the worker to notice the outage")
        assert worker.proc.poll() is None

        proc, url2 = _start_redis(tmp_path / "redis", sock_dir)  # same dir (AOF) and socket
        assert url2 == url
        app.close()
        app = create_app(settings)
        after = [factory.message(content=f"after the outage {i}") for i in range(3)]
        for mid in after:
            app.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
        try:
            rows = wait_analysed(conn, after, timeout_s=180)
        except AssertionError as exc:  # alive but silent? say where its event loop is
            raise AssertionError(f"{exc}\n{worker.stacks()}") from None
        assert all(r["count"] == 1 for r in rows.values())
        assert worker.proc.poll() is None
        app.close()
    finally:
        if worker is not None:
            worker.stop()
        _stop_process(proc, signal.SIGTERM)
