"""The queue layout under load: analysis never waits for background work.

An analysis worker (``--queue gpu``, so the session's ``cpu`` worker is not involved)
and, in the second test, a background worker (``--queue background``) on a private
background queue, against the session's PostgreSQL and Redis.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celery_helpers import start_worker, wait_analysed, wait_drained, wait_for
from enrichment_ai.cli.stack import Child
from enrichment_ai.db import rollup_sql, summary_sql
from enrichment_ai.summaries import pending_key

pytestmark = pytest.mark.integration

BG = "bg-queues-test"
OVERRIDES = {"queue": "gpu", "background_queue": BG, "batch_max_size": 4, "batch_max_wait_ms": 100,
             "summary_min_messages": 5, "summary_min_interval_s": 0}


@pytest.fixture(scope="module")
def q_settings(settings):
    return settings.model_copy(update=OVERRIDES)


@pytest.fixture(scope="module")
def analysis_worker(q_settings, tmp_path_factory) -> Iterator[Child]:
    child = start_worker(q_settings, tmp_path_factory.mktemp("queues"), name="analysis-only",
                         overrides=OVERRIDES)
    yield child
    child.stop()


@pytest.fixture(scope="module")
def producer(q_settings):
    from workers.app import create_app

    app = create_app(q_settings)
    yield app
    app.close()


def send_all(producer, ids) -> None:
    with producer.producer_or_acquire() as p:
        for mid in ids:
            producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)}, producer=p)


def analysed_channel(producer, factory, conn, redis, n: int, text: str):
    """A new channel (no summary pending) with ``n`` messages, all analysed by the
    analysis worker; returns (channel, ids, rows)."""
    channel = factory.channel()
    redis.delete(pending_key(channel))
    ids = [factory.message(channel, content=text.format(i=i)) for i in range(n)]
    send_all(producer, ids)
    return channel, ids, wait_analysed(conn, ids)


def task_succeeded(child: Child, name: str) -> bool:
    log = child.log()
    return f"Task enrichment.{name}[" in log and "succeeded" in log.split(f"Task enrichment.{name}[")[-1].split("\n")[0]


def test_flooded_channel_gets_one_pending_summary(analysis_worker, producer, factory, conn, redis):
    redis.delete(BG)
    channel, _ids, rows = analysed_channel(producer, factory, conn, redis, 40,
                                           "Flood {i}: the raid tonight needs two more healers and a tank.")
    wait_drained(redis, "gpu")
    batches = {r["details"]["batch"]["id"] for r in rows.values()}
    assert len(batches) >= 5  # many batches saw the channel due ...
    assert redis.llen(BG) == 1  # ... one summarize_channel is pending, on the background queue
    assert redis.exists(pending_key(channel))
    assert redis.llen("gpu") == 0  # and nothing but analysis went to the analysis queue
    redis.delete(BG)
    redis.delete(pending_key(channel))


def test_analysis_flows_while_a_long_rollup_and_summary_run(
        analysis_worker, q_settings, producer, factory, conn, redis, migrated_db, tmp_path):
    import psycopg

    redis.delete(BG)
    busy, _ids, _rows = analysed_channel(producer, factory, conn, redis, 6,
                                         "Background channel message {i} about the patch notes.")
    wait_for(lambda: redis.llen(BG) == 1, 30, "the busy channel's summary to be enqueued")
    blocker = psycopg.connect(migrated_db)  # holds the rollup and the summary lock: both tasks wait
    background = None
    try:
        with blocker.transaction():
            blocker.execute("SELECT pg_advisory_xact_lock(%s)", (rollup_sql.ROLLUP_LOCK_KEY,))
            summary_sql.lock_channel(blocker, busy)  # before the background worker can take the task
            background = start_worker(q_settings, tmp_path, name="background-only", overrides=OVERRIDES,
                                      queues="background")
            producer.send_task("enrichment.nightly_rollup", kwargs={"day": "2024-03-06"})
            wait_for(lambda: "Task enrichment.summarize_channel[" in background.log(), 60, "the summary to start")
            channel = factory.channel()
            ids = [factory.message(channel, content=f"Live message {i} while the rollup runs.") for i in range(24)]
            send_all(producer, ids)
            wait_analysed(conn, ids, timeout_s=90)  # analysed while both background tasks wait
            assert not task_succeeded(background, "nightly_rollup")
            assert not task_succeeded(background, "summarize_channel")
        # locks released: the background work completes too
        wait_for(lambda: task_succeeded(background, "nightly_rollup"), 60, "the rollup to finish")
        wait_for(lambda: task_succeeded(background, "summarize_channel"), 60, "the summary to finish")
        assert conn.execute("SELECT message_count FROM conversation_summaries WHERE channel_id = %s",
                            (busy,)).fetchone() == (6,)
        assert not redis.exists(pending_key(busy))  # released after the commit
        assert "models loaded" not in background.log()  # the summary read the stored embeddings
    finally:
        blocker.close()
        if background is not None:
            background.stop()
