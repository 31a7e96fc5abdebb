"""Faults at (CI-friendly) scale, on real services: the costs, not only the guarantees.

One private PostgreSQL + Redis and one ``enrichment-ai worker -c 2`` with ``enrichment-ai
beat`` (sweeper every 5 s, grace 5 s) for the module (:class:`bench.chaos.Rig`, the
harness ``make chaos`` runs at full size), fault injection on
(``tests/faults/sitecustomize.py``: a text with the marker SIGKILLs its process). Each
test sends fresh messages as the platform does and asserts, besides "nothing lost, no
duplicate row": how many analyses were recomputed (``ai_analysis.analyses``), how many
process deaths a poison message cost, that no innocent message was quarantined, and
that the worker still consumes afterwards.
"""

from __future__ import annotations

import time

import pytest

from bench.chaos import Rig

pytestmark = pytest.mark.integration

# The visibility timeout is far beyond every settle timeout here: anything these faults
# leave unacked must come back through the holder heartbeat (workers.markers), as it must
# in a deployment, whose visibility timeout is an hour.
OVERRIDES = {"batch_max_size": 16, "batch_max_wait_ms": 100, "visibility_timeout_s": 900,
             "sweep_grace_s": 5, "sweep_interval_s": 5, "task_max_retries": 8}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("chaos"), overrides=OVERRIDES).start()
    yield r
    r.stop()


def settle(rig: Rig, ids, timeout_s: float = 120, tick=None) -> dict:
    t0 = time.monotonic()
    complete, settled = rig.wait_settled(ids, t0, timeout_s, tick=tick)
    assert settled is not None, (f"not settled in {timeout_s}s (complete: {complete}; unacked: {rig.unacked_tasks()}):\n"
                                 f"{rig.worker.stacks()}")
    return rig


def still_consuming(rig: Rig) -> None:
    probe = rig.messages(3)
    rig.send(probe)
    settle(rig, probe, 60)
    assert rig.worker.proc.poll() is None


def test_redelivered_events_are_acked_without_recomputing(rig):
    ids = rig.messages(48)
    log_from = len(rig.log())
    rig.send(ids)
    settle(rig, ids)
    rig.send(ids)  # every event again: a visibility-timeout redelivery, a platform retry
    settle(rig, ids)
    f = rig.figures(ids, log_from)
    assert f["lost"] == 0 and f["duplicates"] == 0
    assert f["extra"] == 0, f  # none recomputed …
    assert f["acked_no_recompute"] >= len(ids), f  # … every copy acked as already analysed
    rig.send(ids[:4], force=True)  # an explicit re-score still recomputes
    wait = time.monotonic() + 60
    while rig.figures(ids, log_from)["extra"] < 4 and time.monotonic() < wait:
        time.sleep(0.3)
    assert rig.figures(ids, log_from)["extra"] == 4


def test_pool_kill_mid_batch_reruns_the_lost_batch_in_groups(rig):
    ids = rig.messages(96)
    log_from = len(rig.log())
    rig.send(ids)
    state = {"killed": False}

    def kill_once(_elapsed):
        if not state["killed"] and "] batch " in rig.log()[log_from:]:
            # every pool process: one picked at random may be between batches (seen in CI
            # once replacements became fast), and then no batch is lost to test
            state["killed"] = rig.kill_pool_process(every=True)

    settle(rig, ids, 150, tick=kill_once)
    f = rig.figures(ids, log_from)
    assert state["killed"] and f["deaths"] >= 1
    assert f["lost"] == 0 and f["duplicates"] == 0 and f["quarantined"] == [], f
    assert f["extra"] <= len(ids) // 10, f
    log = rig.log()[log_from:]
    assert "re-running the" in log and "re-published" not in log
    still_consuming(rig)


def test_a_poison_message_among_innocents_with_the_sweeper_on(rig):
    ids = rig.messages(60, poison=1)
    poison = set(rig.poison_ids)
    log_from = len(rig.log())
    rig.send(ids)
    settle(rig, ids, 240)
    time.sleep(OVERRIDES["sweep_interval_s"] + OVERRIDES["sweep_grace_s"])  # give the sweeper its chance
    settle(rig, ids, 60)
    f = rig.figures(ids, log_from)
    assert set(f["quarantined"]) == poison, f  # the poison message, no innocent one
    assert f["lost"] == 0 and f["duplicates"] == 0
    assert f["deaths"] <= 3 * len(poison), f
    assert f["extra"] <= len(ids) // 10, f
    assert f["skipped"] == len(poison)
    still_consuming(rig)
    assert rig.figures(ids, log_from)["deaths"] == f["deaths"]  # no copy killed anything since


def test_postgres_restart_pauses_consumption_instead_of_failing_every_batch(rig):
    ids = rig.messages(240)
    log_from = len(rig.log())
    rig.send(ids)
    while rig.done(ids) < 40:
        time.sleep(0.1)
    rig.restart_postgres(3.0)
    settle(rig, ids, 180)
    f = rig.figures(ids, log_from)
    assert f["lost"] == 0 and f["duplicates"] == 0 and f["quarantined"] == []
    assert f["extra"] <= len(ids) // 10, f
    log = rig.log()[log_from:]
    assert "circuit open" in log
    # two pool processes, each with at most a batch in hand and one prefetched, and one
    # probe per backoff period: a few failed batches, not one per queued batch (~12 here)
    assert f["failed_batches"] <= 8, f
    still_consuming(rig)


def test_redis_restart_loses_and_duplicates_nothing(rig):
    """The broker restarts (AOF on) under load. The consumer reconnects with a new holder
    id; what the old connection held (buffered, or analysed but its ack lost with the
    connection) is restored by the heartbeat once the old id's alive key expires, not
    after the visibility timeout (900 s here: far beyond the settle timeout). kombu 5.7's
    Redis transport can also exit the worker ("Unrecoverable error: AttributeError ...
    'hostname'") when the connection drops while it holds unacked messages; the rig
    restarts it as docker-compose's ``restart: unless-stopped`` does, and the same restore
    brings back what it held. Either way: nothing lost, nothing duplicated, little
    recomputed, and settled well before the visibility timeout."""
    ids = rig.messages(240)
    log_from = len(rig.log())
    rig.send(ids)
    while rig.done(ids) < 40:
        time.sleep(0.1)
    rig.restart_redis(3.0)
    settle(rig, ids, 180)
    f = rig.figures(ids, log_from)
    assert f["lost"] == 0 and f["duplicates"] == 0 and f["quarantined"] == []
    assert f["extra"] <= len(ids) // 10, f
    # every message over the server's threshold alerted once: also those whose batch
    # committed and then lost Redis before its alerts went out (republished on redelivery)
    assert f["flagged"] >= len(ids) // 7 - 1 and f["alerts_missing"] == 0 and f["alerts_duplicate"] == 0, f
    still_consuming(rig)


def test_a_silent_worker_can_be_asked_where_it_waits(rig):
    """What the settle failures above report: SIGUSR1 makes the worker log every thread's
    stack (Celery's handler), and the worker goes on consuming afterwards."""
    out = rig.worker.stacks()
    assert "MainThread" in out and "asynloop" in out, out[-2000:]  # the consumer's event loop
    still_consuming(rig)
