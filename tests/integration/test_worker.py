"""End to end through a real worker: send_task -> Redis -> `enrichment-ai worker` ->
PostgreSQL rows. Every test waits on rows and on the broker being drained (nothing left
unacknowledged), never on sleeps alone."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from celery_helpers import analysis_rows, drained, skip_reasons, wait_analysed, wait_drained, wait_for

pytestmark = pytest.mark.integration

ANALYZE = "enrichment.analyze_message"


def send(producer, *ids) -> None:
    for mid in ids:
        producer.send_task(ANALYZE, kwargs={"message_id": str(mid)})


def test_enqueued_messages_are_analysed(celery_worker, producer, factory, conn, redis):
    channel = factory.channel()
    texts = {
        "friendly": "Thanks so much for the help yesterday, you are all wonderful!",
        "hostile": "Shut up, you are a worthless idiot and everyone hates you.",
        "entities": "Barack Obama visited Microsoft headquarters in Seattle last week.",
        "french": "Bonjour à tous, la réunion de demain est annulée, merci de prévenir l'équipe.",
        "japanese": "明日の会議は中止になりました。チームに知らせてください。",
    }
    ids = {k: factory.message(channel, content=v) for k, v in texts.items()}
    send(producer, *ids.values())

    rows = wait_analysed(conn, ids.values())
    wait_drained(redis, "cpu")
    for key, mid in ids.items():
        row = rows[mid]
        assert row["count"] == 1, key
        assert row["model_version"], key
        assert row["toxicity"] is None or 0 <= row["toxicity"] <= 1, key
        assert row["sentiment"] is None or -1 <= row["sentiment"] <= 1, key
        assert row["details"]["batch"]["size"] >= 1, key
    assert rows[ids["friendly"]]["language"] == "en"
    assert rows[ids["french"]]["language"] == "fr"
    assert rows[ids["japanese"]]["language"] == "ja"
    friendly, hostile = rows[ids["friendly"]], rows[ids["hostile"]]
    assert friendly["sentiment"] > 0 > hostile["sentiment"]
    assert hostile["toxicity"] > friendly["toxicity"]
    assert {e["label"] for e in rows[ids["entities"]]["entities"]} & {"PERSON", "ORG", "GPE"}
    # the multilingual default scores Japanese too, and the row says the scores are transferred
    ja = rows[ids["japanese"]]
    assert ja["toxicity"] is not None and ja["details"]["coverage"]["toxicity"] == "transferred"
    assert rows[ids["french"]]["details"]["coverage"]["sentiment"] == "validated"


def test_same_event_twice_gives_one_row(celery_worker, producer, factory, conn, redis):
    mid = factory.message(content="Same event, delivered twice.")
    send(producer, mid, mid)  # twice in (probably) one batch
    first = wait_analysed(conn, [mid])[mid]
    wait_drained(redis, "cpu")
    log_before = len(celery_worker.log())
    send(producer, mid)  # a redelivery in a later batch: acked, not recomputed
    wait_for(lambda: " 1 already analysed" in celery_worker.log()[log_before:], 60,
             "the redelivered event to be acked as already analysed")
    wait_drained(redis, "cpu")
    again = analysis_rows(conn, [mid])[mid]
    assert again["details"]["batch"]["id"] == first["details"]["batch"]["id"]
    assert conn.execute("SELECT analyses FROM ai_analysis WHERE message_id = %s", (mid,)).fetchone()[0] == 1
    producer.send_task(ANALYZE, kwargs={"message_id": str(mid), "force": True})  # an explicit re-score
    wait_for(lambda: analysis_rows(conn, [mid])[mid]["details"]["batch"]["id"]
             != first["details"]["batch"]["id"], 60, "the forced event to be recomputed")
    wait_drained(redis, "cpu")
    assert conn.execute("SELECT count(*), max(analyses) FROM ai_analysis WHERE message_id = %s",
                        (mid,)).fetchone() == (1, 2)


def test_events_are_micro_batched(celery_worker, producer, factory, conn, redis):
    channel = factory.channel()
    ids = [factory.message(channel, content=f"Message number {i} about the weekend plans.")
           for i in range(40)]
    with producer.producer_or_acquire() as p:  # one connection, as a busy platform would
        for mid in ids:
            producer.send_task(ANALYZE, kwargs={"message_id": str(mid)}, producer=p)
    rows = wait_analysed(conn, ids)
    wait_drained(redis, "cpu")
    batches = {r["details"]["batch"]["id"]: r["details"]["batch"]["size"] for r in rows.values()}
    # One enrich_batch call per batch id; 40 events per-message would make 40 batches.
    assert len(batches) <= 10, batches
    assert max(batches.values()) > 1
    assert all(size <= 16 for size in batches.values())  # ENRICHMENT_BATCH_MAX_SIZE
    # 40 new analysed messages >= summary_min_messages: the batch enqueued a summary.
    wait_for(lambda: conn.execute("SELECT count(*) FROM conversation_summaries WHERE channel_id = %s",
                                  (channel,)).fetchone()[0], 60, "a conversation summary")


def test_bad_input_is_skipped_with_reasons_not_retried(celery_worker, producer, factory, conn, redis):
    channel = factory.channel()
    weird = "caf\u0065\u0301 \ufffd\ufffe zero\u200bwidth \U0010fffd rtl\u202e txet"
    contents = {
        "empty": "",
        "whitespace": "  \n\t  ",
        "emoji": "😂😂🔥💯",
        "huge": "All good here. " * 14_000,  # ~210 kB
        "weird": weird,  # PostgreSQL text cannot hold lone surrogates; this is what it can hold
        "none": None,
    }
    ids = {k: factory.message(channel, content=v) for k, v in contents.items()}
    deleted = factory.message(channel, content="this was removed", deleted=True)
    unknown = uuid.uuid4()
    good_after = factory.message(channel, content="A normal message sent after the bad ones.")

    send(producer, *ids.values(), deleted, unknown)
    producer.send_task(ANALYZE, kwargs={"message_id": "not-a-uuid"})
    producer.send_task(ANALYZE, kwargs={"message_id": 12345})
    producer.send_task(ANALYZE, kwargs={})
    producer.send_task("enrichment.summarize_channel", kwargs={"channel_id": "no-such-channel"})
    send(producer, good_after)

    rows = wait_analysed(conn, [*ids.values(), good_after])
    wait_drained(redis, "cpu")
    for key in ("empty", "whitespace", "none"):
        assert rows[ids[key]]["skip_reason"], key
        assert rows[ids[key]]["toxicity"] is None, key
    assert rows[ids["huge"]]["count"] == 1
    assert rows[ids["weird"]]["count"] == 1
    assert rows[good_after]["skip_reason"] is None
    assert skip_reasons(conn, [deleted, unknown]) == {deleted: "deleted", unknown: "not_found"}
    assert analysis_rows(conn, [deleted, unknown]) == {}
    log = celery_worker.log()
    assert "'not-a-uuid': malformed message id" in log
    rejected = dict(conn.execute(
        "SELECT raw, reason FROM rejected_events WHERE task = 'enrichment.analyze_message'").fetchall())
    assert {"'not-a-uuid'": "malformed_id", "12345": "malformed_id", "None": "malformed_id"}.items() <= rejected.items()
    assert wait_for(lambda: conn.execute(
        "SELECT reason FROM rejected_events WHERE task = 'enrichment.summarize_channel' AND raw = %s",
        ("'no-such-channel'",)).fetchone(), 30, "the rejected summarize event") == ("malformed_id",)
    assert "retrying" not in log  # bad input is never retried
    assert celery_worker.proc.poll() is None


def test_sweeper_reenqueues_a_message_whose_event_was_lost(celery_worker, producer, factory, conn, redis):
    created = datetime.now(UTC) - timedelta(seconds=90)  # older than the worker's 30 s grace
    lost = factory.message(content="Nobody ever enqueued me.", created_at=created)
    wait_drained(redis, "cpu")
    assert analysis_rows(conn, [lost]) == {}
    producer.send_task("enrichment.sweep", kwargs={"since": (created - timedelta(seconds=1)).isoformat()})
    wait_analysed(conn, [lost], timeout_s=60)
    wait_for(lambda: drained(redis, "cpu"), 60, "drained")
    assert "sweep: re-enqueued" in celery_worker.log()


def test_a_message_whose_event_came_before_its_commit_is_swept_once_it_exists(celery_worker, producer, factory,
                                                                              conn, redis):
    """The platform sent the event before its INSERT committed: the worker records the id
    as not_found; once the message exists, that skip is not final and the sweeper
    re-enqueues it (a "not_found" skip was final, so such a message was never analysed)."""
    from enrichment_ai import process
    from enrichment_ai.db import store
    from workers import markers

    assert process.NOT_FOUND == store.SKIP_MISSING
    mid = uuid.uuid4()
    producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
    wait_for(lambda: skip_reasons(conn, [mid]) == {mid: "not_found"}, 60, "the not_found skip")
    created = datetime.now(UTC) - timedelta(seconds=90)  # committed late; older than the grace now
    factory.message(content="My INSERT committed after my event was sent.", created_at=created, id=mid)
    wait_drained(redis, "cpu")
    redis.delete(markers.SWEEP_LOCK)  # an earlier test's sweep holds it for half an interval
    producer.send_task("enrichment.sweep", kwargs={"since": (created - timedelta(seconds=1)).isoformat()})
    wait_analysed(conn, [mid], timeout_s=60)
    wait_for(lambda: drained(redis, "cpu"), 60, "drained")


def test_a_backfill_goes_through_the_backfill_queue_the_analysis_worker_consumes(celery_worker, worker_settings,
                                                                               factory, conn, redis, capsys):
    """`enrichment-ai backfill` (`enqueue --missing-since`) sends history to cpu.backfill,
    not ahead of live events on cpu; the analysis worker consumes it."""
    import argparse

    from enrichment_ai.cli import enqueue

    created = datetime.now(UTC) - timedelta(days=3)
    old = factory.message(content="An old message a new model version should score.", created_at=created)
    wait_drained(redis, "cpu")
    args = argparse.Namespace(ids=[], since=created - timedelta(seconds=1), limit=100_000,
                              model_version="a-version-no-row-has", dry_run=False, force=False)
    assert enqueue.run(args, worker_settings) == 0
    out = capsys.readouterr().out
    assert "to queue 'cpu.backfill'" in out and "to queue 'cpu'" not in out
    wait_analysed(conn, [old], timeout_s=60)
    wait_for(lambda: redis.llen("cpu.backfill") == 0, 60, "the backfill queue drained")


def test_beat_tasks_run_on_the_worker(celery_worker, producer, factory, conn, redis):
    """What beat sends: the nightly rollup for a given UTC day writes community_health,
    quiet-channel summaries and partition maintenance complete without error."""
    server = factory.server()
    channel = factory.channel(server)
    day = datetime(2024, 3, 5, 12, tzinfo=UTC)
    mids = [factory.message(channel, content=f"rollup day message {i}", created_at=day) for i in range(3)]
    send(producer, *mids)
    wait_analysed(conn, mids)
    producer.send_task("enrichment.nightly_rollup", kwargs={"day": "2024-03-05"})
    producer.send_task("enrichment.summarize_quiet_channels")
    producer.send_task("enrichment.ensure_partitions")
    row = wait_for(lambda: conn.execute(
        "SELECT message_count FROM community_health WHERE server_id = %s AND date = '2024-03-05'",
        (server,)).fetchone(), 60, "the rollup row")
    assert row[0] == 3
    for name in ("summarize_quiet_channels", "ensure_partitions", "nightly_rollup"):
        wait_for(lambda n=name: f"Task enrichment.{n}[" in celery_worker.log()
                 and "succeeded" in celery_worker.log().split(f"Task enrichment.{n}[")[-1].split("\n")[0],
                 60, f"{name} to succeed")
    wait_drained(redis, "cpu")


def test_pending_markers_are_cleared_once_the_rows_commit(celery_worker, producer, factory, conn, redis):
    """A marker says "on its way"; left to its TTL (an hour) a live stream kept an hour of
    them in Redis. Once the batch committed and was acked they are deleted."""
    from workers import markers
    from workers.tasks import enqueue_analyses

    ids = [factory.message(content=f"Marker check number {i}, nothing to see here.") for i in range(20)]
    for mid in ids:  # a trickle: batches of one, some done before the consumer's 50 ms marking
        enqueue_analyses(producer, [mid])  # marks it pending, then sends
        time.sleep(0.05)
    wait_analysed(conn, ids)
    wait_drained(redis, "cpu")
    wait_for(lambda: not markers.pending(redis, ids), 10, "the committed messages' pending markers to be cleared")
    assert not markers.pending(redis, ids)
