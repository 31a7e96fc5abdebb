"""``python -m bench --only e2e`` at a tiny size, so the benchmark cannot rot: every
phase runs against its own private embedded services with a real worker and beat, and
real numbers come out (rows committed for every event, positive ordered latencies,
alerts for the toxic messages, the naive baseline's rows in the database)."""

from __future__ import annotations

import re
import statistics

import pytest

from bench import e2e
from enrichment_ai.config import Settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
def test_e2e_bench_tiny_run_reports_measured_numbers() -> None:
    # URLs forced unset: the benchmark starts private servers, never the session's Redis
    # (whose test worker would consume the benchmark's events)
    rows = e2e.run(messages=40, duration=5, naive_messages=8, compare_concurrency=False, rounds=2,
                   settings=Settings(database_url=None, redis_url=None), timeline_s=2)
    by = {r["phase"]: r for r in rows}

    # the worker's default -c: one process per core on CPU
    from enrichment_ai.cli.worker import default_concurrency

    backlog = by[f"backlog -c {default_concurrency(Settings(), 'cpu')}"]
    assert backlog["msgs"] == 40 and backlog["msgs_per_s"] > 0 and backlog["seconds"] > 0
    assert backlog["cpu_s"] > 0 and backlog["msgs_per_cpu_s"] > 0  # the worker's CPU is seen

    steady = by["steady: event -> row"]
    sent = int(steady["note"].split(" sent")[0])
    assert sent >= 5 and steady["msgs"] == sent and " 0 rows missing" in steady["note"]
    assert re.search(r"\d+ batches, median \d+ events \(max \d+\); worker \d+ CPU-s", steady["note"]), steady["note"]
    assert 0 < steady["p50_ms"] <= steady["p95_ms"] <= steady["p99_ms"] < 60_000
    visible = by["steady: event -> visible (poll)"]
    assert visible["msgs"] == sent and visible["p50_ms"] > 0
    # --timeline: the 5 s phase in slices of 2 s; every event in exactly one slice, and
    # what the samples read is real (both workers' processes, Redis, the database)
    slices = [r for r in rows if r["phase"].startswith("timeline ") and r["phase"].endswith(" s")]
    assert [r["phase"] for r in slices] == ["timeline 0-2 s", "timeline 2-4 s", "timeline 4-5 s"]
    assert sum(r["msgs"] for r in slices) == sent
    assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in slices if r["msgs"])
    note = slices[0]["note"]
    found = re.search(r"worker pool RSS max (\d+) MiB .*background pool RSS max (\d+) MiB .*Redis (\d+) MiB, "
                      r"DB (\d+) MiB; summaries \+0", note)
    assert found and all(int(x) > 0 for x in found.groups()), note
    assert re.search(r"; machine busy \d+ %; checkpoints \+\d+", note), note
    assert "0 failed" in by["timeline: after the drain"]["note"], by["timeline: after the drain"]["note"]
    alert = by["steady: event -> alert"]
    assert alert["msgs"] >= 1 and alert["p50_ms"] > 0  # an explicit insult is in every sample of 3+

    assert by["analyzers alone"]["msgs"] == 40 and by["analyzers alone"]["msgs_per_s"] > 0
    # the default routes English to the English artifact: the unrouted pass runs beside it
    unrouted = by["analyzers alone, unrouted"]
    assert unrouted["msgs"] == 40 and unrouted["msgs_per_s"] > 0
    ratio = by["analyzers alone, routed / unrouted"]["value"]
    assert abs(ratio - by["analyzers alone"]["msgs_per_s"] / unrouted["msgs_per_s"]) < 0.05
    naive = by["naive per-message"]
    assert naive["msgs"] == 8 and naive["msgs_per_s"] > 0 and naive["note"].startswith("8 rows")

    # two rounds, each backlog paired with the analyzers-alone pass right after it: the
    # ratio is the lower median of the per-round ratios, the rows the lower-median rounds
    def rates(row):
        found = re.search(r"median of 2 rounds \(([^)]*) msgs/s\)", row["note"])
        assert found, row["note"]
        return [float(x) for x in found.group(1).split(", ")]

    b_rates, a_rates = rates(backlog), rates(by["analyzers alone"])
    assert backlog["msgs_per_s"] == min(b_rates) and by["analyzers alone"]["msgs_per_s"] == min(a_rates)
    expected = statistics.median_low([b / a for b, a in zip(b_rates, a_rates, strict=True)])
    assert abs(by["e2e backlog / analyzers alone"]["value"] - expected) < 0.02

    # the ratio is of the unrounded rates; the rows show them to 0.1 msgs/s
    b, n = backlog["msgs_per_s"], naive["msgs_per_s"]
    assert (b - 0.05) / (n + 0.05) - 0.01 <= by["e2e backlog / naive"]["value"] <= (b + 0.05) / max(n - 0.05, 1e-9) + 0.01
    assert by["steady p95 event -> row (ms)"]["value"] == steady["p95_ms"]
    rss = by["max RSS per pool process (MiB)"]["value"]
    assert 100 < rss < 8192 and isinstance(by["max RSS per pool process (MiB)"]["met"], bool)
