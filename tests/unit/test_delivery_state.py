"""Pure parts of the fault handling: the circuit breaker, how a lost batch is split,
reading the head of a kombu queue, and the sweep task's options (no services)."""

from __future__ import annotations

import base64
import json
import math

from enrichment_ai.config import Settings
from workers import markers
from workers.app import create_app
from workers.batching import split_size
from workers.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_with_growing_jittered_pauses_and_resets_on_success():
    clock = Clock()
    b = CircuitBreaker(cap_s=16, clock=clock)
    assert not b.is_open
    pauses = []
    for _ in range(7):
        pauses.append(b.trip())
        assert b.is_open
        clock.t = b.open_until  # the pause has passed: half-open
        assert not b.is_open
    for i, p in enumerate(pauses):
        base = min(16, 2 ** i)
        assert base / 2 <= p <= base
    assert b.failures == 7
    b.reset()
    assert b.failures == 0 and not b.is_open
    assert b.trip() <= 1.0


def test_breaker_failures_reported_while_open_do_not_extend_the_pause():
    clock = Clock()
    b = CircuitBreaker(clock=clock)
    first = b.trip()
    clock.t += first / 2
    assert abs(b.trip() - first / 2) < 1e-9  # the rest of the same pause
    assert b.failures == 1


def deaths_to_isolate(n: int, poison: int) -> tuple[int, int]:
    """Simulate the consumer's re-runs of a lost batch of ``n`` with one poison event:
    (process deaths until it is quarantined, batch runs in all)."""
    deaths, runs = 0, 0
    work = [(list(range(n)), 0)]  # (events, earlier losses)
    while work:
        events, losses = work.pop()
        runs += 1
        if poison not in events:
            continue
        deaths += 1
        if len(events) == 1:
            if losses + 1 >= 2:  # BatchTask.worker_lost_limit: quarantined, never analysed again
                runs += 1
                continue
            work.append((events, losses + 1))
            continue
        size = split_size(len(events), losses)
        work.extend((events[i:i + size], losses + 1) for i in range(0, len(events), size))
    return deaths, runs


def test_a_poison_event_costs_at_most_three_deaths_and_about_two_sqrt_n_runs():
    for n in (1, 2, 3, 4, 5, 8, 16, 33, 64, 128):
        for poison in {0, n // 2, n - 1}:
            deaths, runs = deaths_to_isolate(n, poison)
            assert deaths <= 3, (n, poison, deaths)
            assert runs <= 2 * math.isqrt(n) + 4, (n, poison, runs)  # not n single re-runs
    assert deaths_to_isolate(64, 17) == (3, 1 + 8 + 8 + 1)


def test_split_size():
    assert split_size(64, 0) == 8 and split_size(65, 0) == 9 and split_size(4, 0) == 1
    assert split_size(8, 1) == 1  # a group that died again: single events


def envelope(kwargs, args=()):
    body = base64.b64encode(json.dumps([list(args), kwargs, {}]).encode()).decode()
    return json.dumps({"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                       "headers": {"task": "enrichment.analyze_message"},
                       "properties": {"body_encoding": "base64"}})


class FakeList:
    """The one Redis call the decoder makes, on a list kombu LPUSHes to."""

    def __init__(self, items):
        self.items = items  # index 0 = left = newest

    def lindex(self, _queue, i):
        return self.items[i] if self.items else None


def test_oldest_queued_message_id_reads_the_right_end_of_the_list():
    r = FakeList([envelope({"message_id": "new"}), envelope({}, args=("old",))])
    assert markers.oldest_queued_message_id(r, "cpu") == "old"
    assert markers.oldest_queued_message_id(FakeList([]), "cpu") is None
    assert markers.oldest_queued_message_id(FakeList(["not json"]), "cpu") is None


def test_the_sweep_expires_after_one_interval():
    app = create_app(Settings(redis_url="redis://localhost:1/0", sweep_interval_s=45))
    assert app.tasks["enrichment.sweep"].expires == 45
