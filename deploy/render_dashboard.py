"""Render docs/operations-dashboard.png from a REAL run: the dashboard's core panels.

Starts the embedded stack (services, migrations, a worker with its metrics endpoint),
feeds the sample channels with waves of new messages (sample texts, created now),
scrapes the worker's /metrics every ``--every`` seconds for ``--seconds`` and plots the
same PromQL the Grafana dashboard uses, computed here from the scrapes: throughput,
p95 event latency, queue depth, skips/rejects/retries, stage timings.

    .venv/bin/python deploy/render_dashboard.py --seconds 150 --out docs/operations-dashboard.png
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {f"{s.name}{json.dumps(dict(sorted(s.labels.items())))}": s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def feed_wave(conn, app, channels: list, authors: list, texts: list, n: int) -> None:
    """``n`` new messages, as a platform would produce them: mostly sample texts, a few
    empty or emoji-only ones, one deleted before analysis, plus an id that names no
    message and a malformed one (so the error panel shows real skips and rejects)."""
    from workers.tasks import enqueue_analyses

    ids = []
    now = datetime.now(UTC)
    with conn.transaction():
        for i in range(n):
            mid = uuid.uuid4()
            text = "" if i % 25 == 1 else "🎉🎉" if i % 25 == 2 else random.choice(texts)
            conn.execute("INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at,"
                         " deleted_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (mid, random.choice(channels), random.choice(authors), text, now, now,
                          now if i == 3 else None))
            ids.append(mid)
    enqueue_analyses(app, [*ids, uuid.uuid4()])
    app.send_task("enrichment.analyze_message", kwargs={"message_id": f"bad-{n}"})


def collect(seconds: float, every: float, data_dir: Path) -> list[tuple[float, dict]]:
    port = _free_port()
    os.environ["ENRICHMENT_METRICS_PORT"] = str(port)  # for the worker child's Settings
    os.environ["ENRICHMENT_METRICS_ADDR"] = "127.0.0.1"
    from enrichment_ai import db
    from enrichment_ai.cli.stack import Stack
    from enrichment_ai.config import Settings
    from enrichment_ai.sample import LINES, insert_sample_conversation
    from workers.app import create_app

    settings = Settings(data_dir=data_dir)
    series: list[tuple[float, dict]] = []
    with Stack(settings, beat=False) as stack:
        stack.worker.wait_for_log(" ready.", 600)
        urls = stack.settings_with_urls()
        conn = db.connect(urls.database_url)
        insert_sample_conversation(conn)
        channels = [r[0] for r in conn.execute("SELECT DISTINCT channel_id FROM messages")]
        authors = [r[0] for r in conn.execute("SELECT id FROM users WHERE NOT bot")]
        texts = [t for _c, _a, t in LINES]
        app = create_app(urls)
        t0 = time.monotonic()
        next_wave = 0.0
        rng = random.Random(7)
        while (t := time.monotonic() - t0) < seconds:
            if t >= next_wave:  # bursts of varying size: queue depth and latency move
                feed_wave(conn, app, channels, authors, texts, rng.choice([20, 40, 80, 160]))
                next_wave = t + rng.uniform(8, 20)
            series.append((t, scrape(port)))
            time.sleep(every)
        app.close()
        conn.close()
        _show_health_and_scrape(stack, port)
    return series


def _show_health_and_scrape(stack, port: int) -> None:
    """Print `enrichment-ai health` against the running stack and the scrape's
    enrichment_* lines (what the docs quote)."""
    import subprocess

    from enrichment_ai.cli.stack import cli_argv, service_env

    env = service_env(stack.settings, stack.worker_database_url, stack.services.redis_url)
    res = subprocess.run(cli_argv("health", "--queue", "cpu"), env=env, capture_output=True, text=True)
    print(f"$ enrichment-ai health --queue cpu   (exit {res.returncode})\n{res.stdout}{res.stderr}")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    print("\n".join(ln for ln in text.splitlines() if ln.startswith("enrichment_")))


def _v(sample: dict, name: str, **labels) -> float:
    out = 0.0
    for key, value in sample.items():
        n, _, lab = key.partition("{")
        if n == name:
            ls = json.loads("{" + lab)
            if all(ls.get(k) == v for k, v in labels.items()):
                out += value
    return out


def _rate(series, name, window=15.0, **labels):
    xs, ys = [], []
    for i, (t, s) in enumerate(series):
        j = max(k for k in range(i + 1) if series[k][0] <= max(t - window, series[0][0]) or k == 0)
        t0, s0 = series[j]
        if t > t0:
            xs.append(t)
            ys.append((_v(s, name, **labels) - _v(s0, name, **labels)) / (t - t0))
    return xs, ys


def _quantile(series, name, q=0.95, window=30.0, **labels):
    """histogram_quantile over increase(…[window]) of the _bucket series."""
    xs, ys = [], []
    for i, (t, s) in enumerate(series):
        j = next(k for k in range(i + 1) if series[k][0] >= t - window)
        s0 = series[j][1]
        buckets = {}
        for key, value in s.items():
            n, _, lab = key.partition("{")
            if n != f"{name}_bucket":
                continue
            ls = json.loads("{" + lab)
            if all(ls.get(k) == v for k, v in labels.items()):
                le = float(ls["le"])
                buckets[le] = buckets.get(le, 0) + value - s0.get(key, 0.0)
        total = buckets.get(float("inf"), 0)
        if total <= 0:
            continue
        prev_le, prev_c = 0.0, 0.0
        for le in sorted(buckets):
            c = buckets[le]
            if c >= q * total:
                val = prev_le if le == float("inf") else prev_le + (le - prev_le) * (q * total - prev_c) / max(c - prev_c, 1e-9)
                xs.append(t)
                ys.append(val)
                break
            prev_le, prev_c = le, c
    return xs, ys


def plot(series, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    fig.suptitle("enrichment-ai worker (queue cpu, concurrency 1, shared 2-core machine) — "
                 "scraped from /metrics every few seconds during a real run", fontsize=12)
    ax = axes[0][0]
    for name, label in (("enrichment_events_received_total", "received"),
                        ("enrichment_events_analysed_total", "analysed")):
        ax.plot(*_rate(series, name, queue="cpu"), label=label)
    ax.set_title("Throughput (events/s, rate 15s)")
    ax.legend()
    ax = axes[0][1]
    for since in ("enqueued", "created"):
        ax.plot(*_quantile(series, "enrichment_event_latency_seconds", since=since, queue="cpu"),
                label=f"p95 since {since}")
    ax.set_title("Event → row latency p95 (s, 30s window)")
    ax.legend()
    ax = axes[0][2]
    ax.plot([t for t, _ in series], [_v(s, "enrichment_queue_depth", queue="cpu") for _, s in series],
            label="queue depth")
    ax.plot([t for t, _ in series], [_v(s, "enrichment_broker_unacked_messages") for _, s in series],
            label="unacked")
    ax.set_title("Queue depth (LLEN cpu) and unacked")
    ax.legend()
    ax = axes[1][0]
    ax.plot(*_quantile(series, "enrichment_batch_size_events", q=0.5, queue="cpu"), label="p50")
    ax.plot(*_quantile(series, "enrichment_batch_size_events", q=0.95, queue="cpu"), label="p95")
    ax.set_title("Batch size (events)")
    ax.legend()
    ax = axes[1][1]
    for stage in ("fetch", "analyse", "write", "alerts"):
        ax.plot(*_quantile(series, "enrichment_batch_stage_duration_seconds", stage=stage, queue="cpu"),
                label=stage)
    ax.set_yscale("log")
    ax.set_title("Stage time p95 per batch (s)")
    ax.legend()
    ax = axes[1][2]
    last = series[-1][1]
    reasons = sorted({json.loads("{" + k.partition("{")[2]).get("reason") for k in last
                      if k.startswith("enrichment_analysis_skipped_rows_total{")
                      or k.startswith("enrichment_events_skipped_total{")} - {None})
    ts = [t for t, _ in series]
    for r in reasons:
        ax.plot(ts, [_v(s, "enrichment_analysis_skipped_rows_total", reason=r)
                     + _v(s, "enrichment_events_skipped_total", reason=r) for _, s in series], label=f"skipped: {r}")
    ax.plot(ts, [_v(s, "enrichment_events_rejected_total") for _, s in series], label="rejected: malformed_id")
    ax.plot(ts, [_v(s, "enrichment_events_retried_total") for _, s in series], label="retried")
    ax.plot(ts, [_v(s, "enrichment_events_quarantined_total") for _, s in series], label="quarantined")
    ax.set_title("Skips / retries / quarantine (cumulative)")
    ax.legend(fontsize=7)
    for row in axes:
        for a in row:
            a.set_xlabel("seconds into the run")
            a.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=150)
    p.add_argument("--every", type=float, default=2.0)
    p.add_argument("--out", type=Path, default=Path("docs/operations-dashboard.png"))
    p.add_argument("--series", type=Path, default=None, help="also save the scrapes as JSON")
    args = p.parse_args(argv)
    series = collect(args.seconds, args.every, Path(tempfile.mkdtemp(prefix="enr-dash-")))
    if args.series:
        args.series.write_text(json.dumps(series))
    plot(series, args.out)
    print(f"{len(series)} scrapes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
