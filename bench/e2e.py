"""End-to-end benchmark: the running product (services, ``enrichment-ai worker`` and
``enrichment-ai beat`` as subprocesses, default settings) under a backlog and under a
steady live load, side by side with the analyzers alone and a naive per-message pipeline
on the same texts and database, in ONE invocation::

    python -m bench --only e2e [--messages 2000] [--duration 60] [-c N] [--no-compare-concurrency] [--rounds 3]
    python -m bench.e2e …  (the same, alone)

Set-up (untimed): PostgreSQL and Redis via :func:`enrichment_ai.embedded.start_services`
in a private temp data dir (configured ``ENRICHMENT_*_URL`` win, as everywhere), a
freshly created database (dropped at the end), migrations, and
:class:`enrichment_ai.cli.stack.Stack` — the worker (``worker --queue Q -c C``) and beat
exactly as docker-compose and the tests start them, with whatever ``ENRICHMENT_*``
settings the environment has (none: the out-of-the-box defaults). Messages come from
:mod:`bench.e2e_mix` (~80 % English tweets/chat, ~20 % other languages, long and toxic
ones; 3 servers, 10 channels, 30 users with locales), inserted into the platform tables.
Phases, each timed on this machine's clock (PostgreSQL's ``now()``, Redis stream ids and
``time.time()`` all read the same system clock):

a. **backlog**: N messages inserted, then N ``enrichment.analyze_message`` events sent
   at once with the project's enqueue helper (``workers.tasks.enqueue_analyses``, the
   README contract); the clock runs from the first send to the commit of the last
   ``ai_analysis`` row (its ``created_at``: ``now()`` of the worker's write transaction,
   the connection being in autocommit, so the transaction starts at the upsert), polling
   the database until all N rows exist. msgs/s = N / that time.
b. **steady**: arrivals at ``rate`` = 50 % of the measured backlog throughput (unless
   given) for ``duration`` seconds; each message is inserted with ``created_at`` = now,
   then its event sent, and the send time recorded. Per event: **event → row** =
   ``ai_analysis.created_at`` − send time; **event → visible** = when a poller (every
   0.1 s, another connection) first saw the row − send time (an upper bound: includes the
   poll interval); **event → alert** for the messages the worker alerted on = the
   Redis stream entry id's millisecond time (``enrichment:alerts:{server}``) − send time.
   p50/p95/p99 of each, and the p50 of the events sent in the first vs the last 10 s
   (a third of the run when shorter): "growing" when the last is more than 1.5× the first
   and 100 ms above it. After the producer stops, the run waits for the rows to drain
   (bounded); rows still missing are reported, never dropped silently.
c. **RSS** of every worker pool process (children of the worker's main process, psutil; with
   their USS and the worker's total PSS: on CPU the pool shares the main process's models),
   after the backlog, so every model is loaded and warm; target ≤ 1.5 GiB.
d. (on by default; ``--no-compare-concurrency`` skips it) the backlog rounds again with a
   fresh worker at ``-c 1`` (``-c 2`` when the run's ``-c`` is 1), new messages of the
   same texts.
e. **analyzers alone**: ``Enricher(settings).load().enrich_batch`` in this process on the
   same N texts in batches of ``Settings.batch_max_size`` (model load and one warm-up
   batch excluded; CPU: this process's own). Phases a and e run in ``--rounds`` (3)
   rounds on each worker, a backlog then its analyzers-alone pass while the worker idles:
   a shared machine's speed drifts by ±15 % over minutes, so each round's backlog is
   divided by its own side-by-side pass and the median of those ratios is reported (and
   the median round's figures, every round's rate in the note). Where the settings route
   English to the English artifact (the default, analysis/routed.py), one more pass with
   ``route_english`` off — every text through the multilingual artifact — after the
   workers stopped: what the routing buys per message.
f. **naive**: :mod:`bench.e2e_naive` on the first ``naive_messages`` backlog messages,
   same database (its own ``model_version``).
g. (``--timeline S``, off by default) a **soak** view of phase b: every S seconds the
   memory of each worker's processes, Redis's and the database's size and the summaries
   written are sampled (every 10 s at most), with the machine's busy share, PostgreSQL's
   autovacuum workers and checkpoints, and phase b is reported in slices of S seconds
   (events sent in the slice, their event → row percentiles, what the samples in it read). With
   ``--duration`` above ``summary_min_interval_s`` (30 min) the busy channels' summaries
   run during the phase, so the slices show whether they delay analysis.

Each throughput phase also reports the CPU seconds it cost the whole local stack (this
process and every descendant: worker, pool processes, beat, the embedded PostgreSQL and
its backends, Redis; psutil) and msgs per CPU-second, with the ratios on that basis too:
on a shared, loaded machine wall-clock phases taken minutes apart see different load;
CPU cost per message is less sensitive to that, though not immune (contended cores also
do less per CPU-second).

Between the worker phases the run waits (at most 120 s) until the broker is idle — the
follow-up work batches enqueue (summaries) done — so one phase's leftovers do not load
the next; how long that took is reported ("queues idle N s after the last row").

Ratios: backlog / naive (target ≥ 20), backlog / analyzers alone (target ≥ 0.9; median of the
rounds' paired ratios, for each ``-c``),
steady p95 event → row vs 500 ms, ``-c`` other / ``-c`` primary (target ≥ 1 for 2 vs 1),
RSS vs 1.5 GiB. Timings on a shared machine are noisy; the ratios are taken side by side.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from bench.e2e_mix import Platform, message_mix
from bench.e2e_naive import MODEL_VERSION as NAIVE
from enrichment_ai.config import Settings
from workers.context import pool_has_models

DEFAULT_MESSAGES = 2000
TARGET_P95_MS = 500.0
TARGET_RSS_MB = 1536.0
TARGET_VS_NAIVE = 20.0
TARGET_VS_ANALYZERS = 0.9
MODEL_LOAD_TIMEOUT_S = 300.0
POLL_S = 0.1
#: longest wait for the queues to empty between phases (summaries etc. still running)
IDLE_TIMEOUT_S = 120.0
DEFAULT_ROUNDS = 3
#: ``--timeline``: seconds between samples (slices are the option's length)
TIMELINE_SAMPLE_S = 10.0

_COUNT_ROWS = "SELECT count(*), max(created_at) FROM ai_analysis WHERE message_id = ANY(%s) AND model_version <> %s"
_ROWS = "SELECT message_id, created_at FROM ai_analysis WHERE message_id = ANY(%s) AND model_version <> %s"
_TOXIC = ("SELECT count(*) FROM ai_analysis WHERE message_id = ANY(%s) AND model_version <> %s"
          " AND toxicity_score >= %s")


def _log(msg: str) -> None:
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


def percentiles(values: Sequence[float]) -> tuple[float, float, float] | None:
    """p50, p95, p99 (inclusive method: within the data's range); None when empty."""
    vals = sorted(values)
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0], vals[0], vals[0]
    q = statistics.quantiles(vals, n=100, method="inclusive")
    return q[49], q[94], q[98]


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 1)


# --- services and the stack ----------------------------------------------------------


@dataclass
class Env:
    """Services, the bench's own database, and the settings pointing at them."""

    services: object
    admin_url: str
    database_url: str
    settings: Settings
    tmp: Path

    def close(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(psycopg.conninfo.conninfo_to_dict(self.database_url)["dbname"])))
        finally:
            self.services.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


def open_env(base: Settings) -> Env:
    """Start (or attach to configured) services in a temp data dir; create + migrate a fresh DB."""
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services

    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    services = start_services(base.model_copy(update={"data_dir": tmp}))
    name = f"bench_e2e_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = psycopg.conninfo.make_conninfo(services.database_url, dbname=name)
        with db.connect(url) as conn:
            db.migrate(conn)
    except BaseException:
        services.stop()
        raise
    settings = base.model_copy(update={"database_url": url, "redis_url": services.redis_url, "data_dir": tmp})
    return Env(services, services.database_url, url, settings, tmp)


def start_stack(settings: Settings, concurrency: int):
    """``Stack`` with ``-c concurrency``; returns once every pool process loaded its models."""
    from enrichment_ai.cli.stack import Stack

    stack = Stack(settings, worker_args=("-c", str(concurrency))).start()
    try:
        deadline = time.monotonic() + MODEL_LOAD_TIMEOUT_S
        # this worker's lines only: a phase's worker appends to the log file of the phase before,
        # whose "models loaded" lines made the second backlog phase start timing while its
        # worker was still loading (what docs/metrics.md had called the -c order effect)
        while not pool_has_models(stack.worker.own_log(), concurrency):
            stack.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker: models not loaded in {MODEL_LOAD_TIMEOUT_S}s:\n{stack.worker.log()[-3000:]}")
            time.sleep(0.3)
        stack.worker.wait_for_log(" ready.", 60)
    except BaseException:
        stack.stop()
        raise
    return stack


def pool_rss_mb(stack) -> dict:
    """Memory (MiB) of the worker: RSS of its main process and of each pool process, each
    pool process's USS (pages only it holds: what one more process costs, the models it
    inherited from the main process being shared) and the PSS of them all together (what
    the worker takes from the machine)."""
    import psutil

    main = psutil.Process(stack.worker.proc.pid)
    children = main.children(recursive=True)
    full = {p.pid: p.memory_full_info() for p in [main, *children]}
    mib = 2**20
    return {"main": full[main.pid].rss / mib,
            "pool": sorted((full[c.pid].rss / mib for c in children), reverse=True),
            "pool_uss": sorted((full[c.pid].uss / mib for c in children), reverse=True),
            "total_pss": sum(getattr(m, "pss", m.rss) for m in full.values()) / mib}


def broker_busy(redis_url: str) -> int:
    """Messages waiting in any queue of the (private) broker plus unacknowledged ones:
    every Redis list is a Celery queue there, ``unacked`` holds the delivered ones."""
    from enrichment_ai.embedded import redis_client

    client = redis_client(redis_url)
    try:
        waiting = sum(client.llen(k) for k in client.scan_iter(_type="list"))
        return waiting + client.hlen("unacked")
    finally:
        client.close()


def wait_idle(redis_url: str, timeout_s: float) -> float:
    """Until the broker is idle (nothing queued or unacked; follow-up work such as summaries
    done) or ``timeout_s``; returns the seconds waited."""
    t0 = time.monotonic()
    while broker_busy(redis_url) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.5)
    return time.monotonic() - t0


def cpu_times(root: int | None = None, *, descendants: bool = True) -> dict[int, float]:
    """pid -> CPU seconds (user + system) of process ``root`` (default: this one) and, with
    ``descendants``, every live descendant. For this process that is the worker, its pool
    processes, beat, and the embedded PostgreSQL (with its backends) and Redis — the whole
    product stack on this machine. With configured (remote) services their CPU is not seen."""
    import psutil

    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)] if descendants else [top]
    except psutil.Error:
        return {}
    out = {}
    for proc in procs:
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
        except psutil.Error:
            continue
    return out


def cpu_since(start: dict[int, float], root: int | None = None, *, descendants: bool = True) -> float:
    """CPU seconds spent since ``start`` (a :func:`cpu_times` sample with the same ``root``
    and ``descendants``) by the processes alive now; a process that exited in between is
    not counted (short-lived ones only)."""
    return sum(v - start.get(pid, 0.0) for pid, v in cpu_times(root, descendants=descendants).items())


# --- phases ----------------------------------------------------------------------------


def backlog(conn: psycopg.Connection, app, platform: Platform, texts: Sequence[str], timeout_s: float) -> dict:
    """Phase a: insert, enqueue all at once, wait for every row (see module docstring)."""
    from workers.tasks import enqueue_analyses

    ids = platform.insert_messages(conn, texts)
    # What autovacuum does within a minute of such an insert on a deployment: without it
    # the second backlog phase planned the per-batch summary-due check on the statistics
    # of the first (created_at index scans across partitions: 90 ms per batch instead of
    # 9), which made whichever -c ran second look ~2x slower (docs/metrics.md).
    conn.execute("ANALYZE messages, ai_analysis")
    cpu0 = cpu_times()
    t0 = time.time()
    enqueue_analyses(app, ids)
    enqueued_s = time.time() - t0
    deadline = time.monotonic() + timeout_s
    while True:
        n, last = conn.execute(_COUNT_ROWS, (ids, NAIVE)).fetchone()
        if n >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    cpu = cpu_since(cpu0)
    seconds = (last.timestamp() - t0) if last else float("nan")
    return {"ids": ids, "n": len(ids), "rows": n, "seconds": seconds, "enqueue_s": enqueued_s, "cpu_s": cpu,
            "msgs_per_s": n / seconds if last and seconds > 0 else 0.0}


@dataclass
class SteadyResult:
    sent: dict[UUID, float] = field(default_factory=dict)  # id -> send time
    seen: dict[UUID, float] = field(default_factory=dict)  # id -> first seen by the poller
    committed: dict[UUID, float] = field(default_factory=dict)  # id -> ai_analysis.created_at
    alerted: dict[UUID, float] = field(default_factory=dict)  # id -> stream entry time
    start: float = 0.0
    produced_s: float = 0.0
    idle_after_s: float = 0.0
    toxic_rows: int = 0  # rows with toxicity_score (2 decimals) >= the default threshold
    worker_cpu_s: float = 0.0  # the analysis worker's CPU (main + pool processes) over the phase
    batches: list[int] = field(default_factory=list)  # events per analysis batch in the phase
    #: sent, not yet seen by the poller: what it asks the database about. A set kept by the
    #: producer and the poller, not recomputed from ``sent`` each poll: over an hour's soak
    #: (~400k events) that scan alone took a fifth of a core from the machine measured.
    pending: set[UUID] = field(default_factory=set)
    #: ``--timeline``: one dict per sample (``t`` = time.time(), then what the sampler read)
    samples: list[dict] = field(default_factory=list)


def _poller(url: str, result: SteadyResult, lock: threading.Lock, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            with lock:
                pending = list(result.pending)
            if pending:
                rows = conn.execute(_ROWS, (pending, NAIVE)).fetchall()
                now = time.time()
                with lock:
                    for mid, _ in rows:
                        result.seen.setdefault(mid, now)
                        result.pending.discard(mid)
            stop.wait(POLL_S)


def _sampling(sampler, every_s: float, result: SteadyResult, stop: threading.Event) -> None:
    while True:
        try:
            result.samples.append({"t": time.time(), **sampler()})
        except Exception as exc:  # noqa: BLE001 - a failed sample is reported, the phase goes on
            result.samples.append({"t": time.time(), "error": repr(exc)})
        if stop.wait(every_s):
            return


def steady(env: Env, conn: psycopg.Connection, app, platform: Platform, texts: Sequence[str],
           rate: float, duration: float, drain_timeout_s: float, sampler=None,
           sample_every_s: float = 0.0) -> SteadyResult:
    """Phase b: ``rate`` msgs/s for ``duration`` s, then drain (see module docstring).
    With ``sampler`` and ``sample_every_s``, ``sampler()`` is read every that many
    seconds from the start to the end of the drain (``--timeline``)."""
    from workers.tasks import ANALYZE

    res = SteadyResult()
    lock, stop = threading.Lock(), threading.Event()
    poller = threading.Thread(target=_poller, args=(env.database_url, res, lock, stop), daemon=True)
    poller.start()
    threads = [poller]
    if sampler is not None and sample_every_s > 0:
        threads.append(threading.Thread(target=_sampling, args=(sampler, sample_every_s, res, stop), daemon=True))
        threads[-1].start()
    total = max(1, int(rate * duration))
    try:
        with app.producer_or_acquire() as producer:
            res.start = time.time()
            for i in range(total):
                delay = res.start + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                (mid,) = platform.insert_messages(conn, [texts[i % len(texts)]])
                sent = time.time()
                app.send_task(ANALYZE, kwargs={"message_id": str(mid)}, producer=producer)
                with lock:
                    res.sent[mid] = sent
                    res.pending.add(mid)
            res.produced_s = time.time() - res.start
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline:
            with lock:
                if len(res.seen) >= len(res.sent):
                    break
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    for mid, created in conn.execute(_ROWS, (list(res.sent), NAIVE)).fetchall():
        res.committed[mid] = created.timestamp()
    res.toxic_rows = conn.execute(_TOXIC, (list(res.sent), NAIVE, env.settings.toxicity_threshold)).fetchone()[0]
    time.sleep(1.0)  # alerts are published right after the batch commits
    res.alerted = read_alerts(env.settings.redis_url, platform.server_ids, set(res.sent))
    return res


def stack_sampler(env: Env, stack, platform: Platform):
    """``(sample, close)`` for ``--timeline``: ``sample()`` reads what an operator watches
    over a day of live load — RSS of each worker's main process and largest pool process
    (and the pool's pids, so a replaced process shows), Redis's ``used_memory``, the
    database's size, the summaries written for the bench's channels, and what may explain
    a slow slice: the machine's CPU times, PostgreSQL's autovacuum workers at work and its
    checkpoint count."""
    import psutil

    from enrichment_ai.embedded import redis_client

    channels = [c for c, _ in platform.channels]
    conn = psycopg.connect(env.database_url, autocommit=True)  # the sampler thread's own
    mib = 2**20

    def rss(proc) -> float:
        try:
            return proc.memory_info().rss / mib
        except psutil.NoSuchProcess:  # a pool process being replaced
            return 0.0

    def sample() -> dict:
        out: dict = {}
        for child in stack.children:
            if child.name == "beat":
                continue
            main = psutil.Process(child.proc.pid)
            kids = main.children(recursive=True)
            out[f"{child.name}_main_mib"] = rss(main)
            out[f"{child.name}_pool_mib"] = max((rss(k) for k in kids), default=0.0)
            out[f"{child.name}_pool_pids"] = sorted(k.pid for k in kids)
        client = redis_client(env.settings.redis_url)
        try:
            out["redis_mib"] = client.info("memory")["used_memory"] / mib
        finally:
            client.close()
        out["db_mib"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / mib
        out["summaries"] = conn.execute("SELECT count(*) FROM conversation_summaries WHERE channel_id = ANY(%s)",
                                        (channels,)).fetchone()[0]
        out["autovacuum"] = [q for (q,) in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query <> ''")]
        out["checkpoints"] = _checkpoints(conn)
        cpu = psutil.cpu_times()
        out["cpu_idle_s"], out["cpu_total_s"] = cpu.idle + getattr(cpu, "iowait", 0.0), sum(cpu)
        return out

    return sample, conn.close


def _checkpoints(conn: psycopg.Connection) -> int | None:
    """Checkpoints since the server started (PostgreSQL 17+: pg_stat_checkpointer)."""
    for query in ("SELECT num_timed + num_requested FROM pg_stat_checkpointer",
                  "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"):
        try:
            with conn.transaction():
                return int(conn.execute(query).fetchone()[0])
        except psycopg.Error:
            continue
    return None


def timeline_rows(st: SteadyResult, every_s: float, duration: float) -> list[dict]:
    """``--timeline``: the steady phase cut into ``every_s`` slices by send time; per slice
    the events sent, event → row p50/p95/p99 of those events, and from the samples taken
    in it: the largest pool-process RSS of each worker, Redis and database size at its
    end, summaries written and checkpoints taken during it, the machine's busy share, the
    tables autovacuum was seen working on, and whether a pool process was replaced."""
    slices = max(1, int(-(-duration // every_s)))
    lat: list[list[float]] = [[] for _ in range(slices)]
    sent_n = [0] * slices
    for mid, t in st.sent.items():
        k = min(slices - 1, int((t - st.start) // every_s))
        sent_n[k] += 1
        if mid in st.committed:
            lat[k].append(st.committed[mid] - t)
    good = [s for s in st.samples if "error" not in s]
    errors = len(st.samples) - len(good)

    def last_before(t: float) -> dict | None:
        before = [s for s in good if s["t"] <= t + 1.0]
        return before[-1] if before else None

    rows = []
    for k in range(slices):
        a, b = k * every_s, min((k + 1) * every_s, duration)
        inside = [s for s in good if st.start + a - 1.0 <= s["t"] <= st.start + b + 1.0]
        begin, end = last_before(st.start + a), last_before(st.start + b)
        row = {"bench": "e2e", "phase": f"timeline {a:.0f}-{b:.0f} s", "msgs": sent_n[k]}
        p = percentiles(lat[k])
        if p:
            row.update(p50_ms=_ms(p[0]), p95_ms=_ms(p[1]), p99_ms=_ms(p[2]))
        notes = [f"{sent_n[k] - len(lat[k])} rows missing"] if sent_n[k] > len(lat[k]) else []
        if inside:
            for name in ("worker", "background"):
                if f"{name}_pool_mib" in inside[0]:
                    notes.append(f"{name} pool RSS max {max(s[f'{name}_pool_mib'] for s in inside):.0f} MiB "
                                 f"(main {max(s[f'{name}_main_mib'] for s in inside):.0f})")
        if end:
            notes.append(f"Redis {end['redis_mib']:.0f} MiB, DB {end['db_mib']:.0f} MiB")
            if begin:
                notes.append(f"summaries +{end['summaries'] - begin['summaries']}")
                if end["cpu_total_s"] > begin["cpu_total_s"]:
                    busy = 1 - (end["cpu_idle_s"] - begin["cpu_idle_s"]) / (end["cpu_total_s"] - begin["cpu_total_s"])
                    notes.append(f"machine busy {100 * busy:.0f} %")
                if end["checkpoints"] is not None and begin["checkpoints"] is not None:
                    notes.append(f"checkpoints +{end['checkpoints'] - begin['checkpoints']}")
                replaced = [n for n in ("worker", "background")
                            if begin.get(f"{n}_pool_pids") != end.get(f"{n}_pool_pids")]
                if replaced:
                    notes.append(f"pool process replaced: {', '.join(replaced)}")
        vacuumed = sorted({q.split()[-1].split(".")[-1] for smp in inside for q in smp["autovacuum"]})
        if vacuumed:
            seen = sum(1 for smp in inside if smp["autovacuum"])
            notes.append(f"autovacuum in {seen} of {len(inside)} samples ({', '.join(vacuumed)})")
        row["note"] = "; ".join(notes)
        rows.append(row)
    if good:
        last = good[-1]
        rows.append({"bench": "e2e", "phase": "timeline: after the drain",
                     "note": f"{len(good)} samples ({errors} failed); at the last: worker pool "
                             f"RSS {last.get('worker_pool_mib', 0):.0f} MiB, background pool "
                             f"{last.get('background_pool_mib', 0):.0f} MiB, Redis {last['redis_mib']:.0f} MiB, "
                             f"DB {last['db_mib']:.0f} MiB, {last['summaries']} summaries in all"})
    return rows


def alert_times(client, server_ids: Sequence[UUID], wanted: set[UUID]) -> dict[UUID, list[float]]:
    """message id -> times (stream id ms, in order) of every alert entry of ``wanted``
    messages in the servers' streams (``make chaos`` counts them: one per message)."""
    from enrichment_ai.alerts import stream_key

    out: dict[UUID, list[float]] = {}
    for sid in server_ids:
        for entry_id, fields in client.xrange(stream_key(sid), "-", "+"):
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            raw = fields.get(b"message_id") or fields.get("message_id")
            mid = UUID(raw.decode() if isinstance(raw, bytes) else raw)
            if mid in wanted:
                out.setdefault(mid, []).append(int(eid.split("-")[0]) / 1000.0)
    return out


def read_alerts(redis_url: str, server_ids: Sequence[UUID], wanted: set[UUID]) -> dict[UUID, float]:
    """message id -> time of its first alert entry (stream id ms) for ``wanted`` messages."""
    from enrichment_ai.embedded import redis_client

    client = redis_client(redis_url)
    try:
        return {mid: times[0] for mid, times in alert_times(client, server_ids, wanted).items()}
    finally:
        client.close()


_DUE = re.compile(r"(\d+) channels due a summary")


_BATCH = re.compile(r"\] batch \w+: (\d+) events")


def batch_sizes(worker_log: str) -> list[int]:
    """Events per analysis batch, from the worker's ``batch …: N events`` log lines."""
    return [int(m.group(1)) for m in _BATCH.finditer(worker_log)]


def summary_counts(conn: psycopg.Connection, platform: Platform, worker_log: str) -> str:
    """Summaries written for the bench's channels, and summary tasks the analysis batches
    asked for (their log lines, today ``… N channels due a summary``; 0 if none say so)."""
    written = conn.execute("SELECT count(*) FROM conversation_summaries WHERE channel_id = ANY(%s)",
                           ([c for c, _ in platform.channels],)).fetchone()[0]
    asked = sum(int(m.group(1)) for m in _DUE.finditer(worker_log))
    return f"{written} summaries written, {asked} summary tasks asked for by batches"


def load_enricher(settings: Settings):
    """The analyzers in this process, loaded and warmed up on one worker-sized batch."""
    from enrichment_ai.pipeline import Enricher

    enricher = Enricher(settings).load()
    enricher.enrich_batch(list(message_mix(settings.batch_max_size)))  # warm-up
    return enricher


def alone_pass(enricher, texts: Sequence[str], bs: int) -> dict:
    """Phase e: ``enricher.enrich_batch`` on ``texts`` in batches of ``bs``; CPU is this
    process's own (a worker idling meanwhile is not counted)."""
    cpu0 = cpu_times(descendants=False)
    t0 = time.perf_counter()
    n = 0
    for start in range(0, len(texts), bs):
        n += len(enricher.enrich_batch(list(texts[start : start + bs])))
    elapsed = time.perf_counter() - t0
    return {"msgs": n, "seconds": elapsed, "msgs_per_s": n / elapsed, "batch": bs,
            "cpu_s": cpu_since(cpu0, descendants=False)}


def analyzers_alone(settings: Settings, texts: Sequence[str]) -> dict:
    """Phase e with its own freshly loaded analyzers (the unrouted comparison)."""
    return alone_pass(load_enricher(settings), texts, settings.batch_max_size)


def backlog_rounds(env: Env, stack, conn: psycopg.Connection, app, platform: Platform, texts: Sequence[str],
                   rounds: int, enricher, on_first=None) -> tuple[list[dict], list[dict]]:
    """Phases a and e interleaved, ``rounds`` times on the running worker: a backlog of
    ``texts`` (new messages each round), the broker left to go idle, then the analyzers
    alone on the same texts in this process. The machine's speed drifts over minutes on a
    shared host (the analyzers alone measured 186 and 213 msgs/s an hour apart): a ratio
    of phases taken side by side, round by round, is what survives that drift.
    ``on_first()`` runs after the first backlog (RSS: every model loaded and warm)."""
    backs, alones = [], []
    for i in range(rounds):
        b = backlog(conn, app, platform, texts, timeout_s=max(120.0, len(texts) / 5))
        if not b["msgs_per_s"]:
            raise RuntimeError(f"backlog: no rows committed; worker log:\n{stack.worker.log()[-3000:]}")
        if i == 0 and on_first is not None:
            on_first()
        b["idle_after_s"] = wait_idle(env.settings.redis_url, IDLE_TIMEOUT_S)
        a = alone_pass(enricher, texts, env.settings.batch_max_size)
        _log(f"round {i + 1}/{rounds}: backlog {b['rows']}/{len(texts)} rows, {b['msgs_per_s']:.1f} msgs/s, "
             f"{b['cpu_s']:.0f} CPU-s; analyzers alone {a['msgs_per_s']:.1f} msgs/s")
        backs.append(b)
        alones.append(a)
    return backs, alones


def median_round(phases: Sequence[dict]) -> dict:
    """The round with the median msgs/s (the lower one of an even count: a measured round,
    not an average), with every round's rate under ``"rates"``."""
    ranked = sorted(phases, key=lambda d: d["msgs_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "rates": [d["msgs_per_s"] for d in phases]}


def paired(backs: Sequence[dict], alones: Sequence[dict], per_cpu: bool = False) -> float | None:
    """Median (lower) over rounds of backlog / analyzers alone, each round against its own
    side-by-side pass."""
    f = _per_cpu if per_cpu else (lambda d: d["msgs_per_s"])
    values = [_ratio(f(b), f(a)) for b, a in zip(backs, alones, strict=True)]
    values = [v for v in values if v is not None]
    return statistics.median_low(values) if values else None


# --- report ----------------------------------------------------------------------------


def _latency_row(phase: str, lat: dict[UUID, float], sent: dict[UUID, float], start: float, duration: float,
                 **extra) -> dict:
    p = percentiles(list(lat.values()))
    row = {"bench": "e2e", "phase": phase, "msgs": len(lat)}
    if p:
        row.update(p50_ms=_ms(p[0]), p95_ms=_ms(p[1]), p99_ms=_ms(p[2]))
        window = min(10.0, duration / 3)
        first = [v for m, v in lat.items() if sent[m] - start < window]
        last = [v for m, v in lat.items() if sent[m] - start >= duration - window]
        if first and last:
            f, la = statistics.median(first), statistics.median(last)
            row.update(first_p50_ms=_ms(f), last_p50_ms=_ms(la), growing=la > 1.5 * f and la - f > 0.1)
    row.update(extra)
    return row


def _per_cpu(d: dict) -> float | None:
    """msgs per CPU-second of the phase (robust to other load on a shared machine)."""
    n = d.get("rows", d.get("msgs"))
    return n / d["cpu_s"] if d.get("cpu_s") else None


def _cpu_cols(d: dict) -> dict:
    pc = _per_cpu(d)
    return {"cpu_s": round(d["cpu_s"], 1), "msgs_per_cpu_s": round(pc, 2) if pc else None}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _backlog_note(b: dict) -> str:
    missing = f"ONLY {b['rows']} of {b['n']} rows within the timeout; " if b["rows"] < b["n"] else ""
    return f"{missing}enqueue took {b['enqueue_s']:.2f}s; queues idle {b['idle_after_s']:.0f}s after the last row"


def _rounds_note(d: dict) -> str:
    rates = d.get("rates") or []
    if len(rates) < 2:
        return ""
    return f"median of {len(rates)} rounds ({', '.join(f'{r:.1f}' for r in rates)} msgs/s); "


def report(c: int, primary: tuple[dict, list[dict], list[dict]], other: tuple | None, st: SteadyResult, rate: float,
           duration: float, alone: dict, naive: dict, rss: dict, summaries: str,
           timeline: Sequence[dict] = ()) -> list[dict]:
    """The rows ``bench/__main__.py`` prints (see the module docstring for each).
    ``primary`` is (median backlog round, every backlog round, their analyzers-alone
    passes); ``other`` the same for the other ``-c``, after it."""
    back, backs, alones = primary
    rows = [{"bench": "e2e", "phase": f"backlog -c {c}", "msgs": back["rows"], "seconds": round(back["seconds"], 2),
             "msgs_per_s": round(back["msgs_per_s"], 1), **_cpu_cols(back),
             "note": _rounds_note(back) + _backlog_note(back)}]
    if other:
        oc, ob, _, _ = other
        rows.append({"bench": "e2e", "phase": f"backlog -c {oc}", "msgs": ob["rows"], "seconds": round(ob["seconds"], 2),
                     "msgs_per_s": round(ob["msgs_per_s"], 1), **_cpu_cols(ob),
                     "note": _rounds_note(ob) + _backlog_note(ob)})
    sent = st.sent
    missing = len(sent) - len(st.committed)
    produced = f"{len(sent)} sent at {rate:.1f}/s (achieved {len(sent) / st.produced_s:.1f}/s) for {st.produced_s:.0f}s"
    lat_row = {m: st.committed[m] - sent[m] for m in st.committed}
    lat_seen = {m: st.seen[m] - sent[m] for m in st.seen}
    lat_alert = {m: st.alerted[m] - sent[m] for m in st.alerted}
    batching = (f"{len(st.batches)} batches, median {statistics.median(st.batches):.0f} events "
                f"(max {max(st.batches)}); worker {st.worker_cpu_s:.0f} CPU-s = "
                f"{len(st.committed) / st.worker_cpu_s:.0f} msgs per CPU-s; " if st.batches and st.worker_cpu_s else "")
    rows.append(_latency_row("steady: event -> row", lat_row, sent, st.start, duration,
                             note=f"{produced}; {batching}{missing} rows missing after drain; queues idle "
                                  f"{st.idle_after_s:.0f}s later; whole run: {summaries}"))
    rows.append(_latency_row("steady: event -> visible (poll)", lat_seen, sent, st.start, duration,
                             note=f"poll every {POLL_S}s"))
    rows.append(_latency_row("steady: event -> alert", lat_alert, sent, st.start, duration,
                             note=f"Redis stream entry time; {len(lat_alert)} alerts, {st.toxic_rows} rows with "
                                  f"toxicity_score >= the default threshold"))
    rows.extend(timeline)
    rows.append({"bench": "e2e", "phase": "analyzers alone", "msgs": alone["msgs"], "seconds": round(alone["seconds"], 2),
                 "msgs_per_s": round(alone["msgs_per_s"], 1), **_cpu_cols(alone),
                 "note": f"{_rounds_note(alone)}Enricher.enrich_batch, batches of {alone['batch']}, "
                         f"each pass right after its -c {c} backlog round (the worker idle)"})
    unrouted = alone.get("unrouted")
    if unrouted:
        rows.append({"bench": "e2e", "phase": "analyzers alone, unrouted", "msgs": unrouted["msgs"],
                     "seconds": round(unrouted["seconds"], 2), "msgs_per_s": round(unrouted["msgs_per_s"], 1),
                     **_cpu_cols(unrouted), "note": "ENRICHMENT_ROUTE_ENGLISH=false: English too through the "
                                                    "multilingual artifact"})
    rows.append({"bench": "e2e", "phase": "naive per-message", "msgs": naive["msgs"], "seconds": round(naive["seconds"], 2),
                 "msgs_per_s": round(naive["msgs_per_s"], 1), **_cpu_cols(naive),
                 "note": f"{naive['rows']} rows; langdetect, 4x MiniLM batch 1, full spaCy, INSERT+COMMIT each"})
    main_mb, pool_mb = rss["main"], rss["pool"]
    p95 = percentiles(list(lat_row.values()))
    ratios = [
        ("e2e backlog / naive", back["msgs_per_s"] / naive["msgs_per_s"] if naive["msgs_per_s"] else None, f">= {TARGET_VS_NAIVE:g}"),
        ("e2e backlog / analyzers alone", paired(backs, alones), f">= {TARGET_VS_ANALYZERS:g}"),
        ("e2e backlog / naive, per CPU-s", _ratio(_per_cpu(back), _per_cpu(naive)), f">= {TARGET_VS_NAIVE:g}"),
        ("e2e backlog / analyzers alone, per CPU-s", paired(backs, alones, per_cpu=True), f">= {TARGET_VS_ANALYZERS:g}"),
        ("steady p95 event -> row (ms)", _ms(p95[1]) if p95 else None, f"<= {TARGET_P95_MS:g}"),
        ("max RSS per pool process (MiB)", round(max(pool_mb), 0) if pool_mb else None, f"<= {TARGET_RSS_MB:g}"),
    ]
    if unrouted:
        ratios.append(("analyzers alone, routed / unrouted",
                       alone["msgs_per_s"] / unrouted["msgs_per_s"] if unrouted["msgs_per_s"] else None, ">= 1"))
    if other:
        oc, ob, obacks, oalones = other
        ratios.append((f"e2e backlog -c {oc} / analyzers alone", paired(obacks, oalones),
                       f">= {TARGET_VS_ANALYZERS:g}"))
        ratios.append((f"backlog -c {oc} / -c {c}", _ratio(ob["msgs_per_s"], back["msgs_per_s"]),
                       ">= 1" if oc == 2 else "<= 1"))
    for name, value, target in ratios:
        if value is None:
            met = None
        elif target.startswith(">="):
            met = value >= float(target[3:])
        else:
            met = value <= float(target[3:])
        rows.append({"bench": "e2e", "phase": name, "value": round(value, 2) if isinstance(value, float) else value,
                     "target": target, "met": met})
    rows.append({"bench": "e2e", "phase": "RSS", "note": f"worker main {main_mb:.0f} MiB; pool processes "
                                                          f"{', '.join(f'{m:.0f}' for m in pool_mb)} MiB; their USS "
                                                          f"{', '.join(f'{m:.0f}' for m in rss['pool_uss'])} MiB; "
                                                          f"worker total PSS {rss['total_pss']:.0f} MiB"})
    return rows


def run(messages: int = DEFAULT_MESSAGES, duration: float = 60.0, concurrency: int | None = None,
        compare_concurrency: bool = True,
        naive_messages: int = 300, rate: float | None = None, settings: Settings | None = None,
        rounds: int = DEFAULT_ROUNDS, timeline_s: float = 0.0, distinct: bool = False) -> list[dict]:
    """Every phase of the module docstring in one go; rows for ``bench/__main__.py``."""
    from enrichment_ai.cli.worker import default_concurrency
    from workers.app import create_app

    if rounds < 1:
        raise ValueError("--rounds must be at least 1")
    env = open_env(settings or Settings())
    # the worker's own default unless given: what `enrichment-ai worker` runs out of the box
    concurrency = concurrency or default_concurrency(env.settings, env.settings.queue)
    app = create_app(env.settings)
    try:
        with psycopg.connect(env.database_url, autocommit=True) as conn:
            platform = Platform.create(conn)
            texts = message_mix(messages)
            _log("loading the analyzers in this process (phase e runs beside the backlog rounds)")
            enricher = load_enricher(env.settings)
            _log(f"starting worker -c {concurrency} and beat (default settings, queue {env.settings.queue!r})")
            stack = start_stack(env.settings, concurrency)
            rss: dict = {}
            try:
                backs, alones = backlog_rounds(env, stack, conn, app, platform, texts, rounds, enricher,
                                               on_first=lambda: rss.update(pool_rss_mb(stack)))
                back = median_round(backs)
                _log(f"backlog -c {concurrency}: median {back['msgs_per_s']:.1f} msgs/s over {rounds} rounds")
                steady_rate = rate or 0.5 * back["msgs_per_s"]
                _log(f"steady: {steady_rate:.1f} msgs/s for {duration:.0f}s")
                worker_pid = stack.worker.proc.pid
                log_mark, cpu_mark = len(stack.worker.own_log()), cpu_times(worker_pid)
                sampler, close_sampler = stack_sampler(env, stack, platform) if timeline_s else (None, None)
                try:
                    # --distinct: a text the stack has not seen for every arrival (a live stream's
                    # new words), not the backlog's texts over again
                    steady_texts = (message_mix(int(steady_rate * duration) + 1, seed=10, distinct=True)
                                    if distinct else texts)
                    st = steady(env, conn, app, platform, steady_texts, steady_rate, duration,
                                drain_timeout_s=max(60.0, 2 * duration), sampler=sampler,
                                sample_every_s=min(timeline_s, TIMELINE_SAMPLE_S))
                finally:
                    if close_sampler:
                        close_sampler()
                st.worker_cpu_s = cpu_since(cpu_mark, worker_pid)
                st.batches = batch_sizes(stack.worker.own_log()[log_mark:])
                p = percentiles([st.committed[m] - st.sent[m] for m in st.committed])
                if p:
                    _log(f"steady: {len(st.committed)}/{len(st.sent)} rows, event -> row p50/p95/p99 "
                         f"{p[0] * 1000:.0f}/{p[1] * 1000:.0f}/{p[2] * 1000:.0f} ms, {len(st.alerted)} alerts")
                summaries = summary_counts(conn, platform, stack.worker.own_log())
                st.idle_after_s = wait_idle(env.settings.redis_url, IDLE_TIMEOUT_S)
            finally:
                stack.stop()
            other = None
            if compare_concurrency:
                oc = 2 if concurrency == 1 else 1  # the default against the other of -c 1 / -c 2
                _log(f"backlog rounds again with -c {oc}")
                stack = start_stack(env.settings, oc)
                try:
                    obacks, oalones = backlog_rounds(env, stack, conn, app, platform, texts, rounds, enricher)
                finally:
                    stack.stop()
                ob = median_round(obacks)
                _log(f"backlog -c {oc}: median {ob['msgs_per_s']:.1f} msgs/s over {rounds} rounds")
                other = (oc, ob, obacks, oalones)
            del enricher
            alone = median_round(alones)
            from enrichment_ai.analysis.routed import routes_english

            if routes_english(env.settings):  # side by side: what routing English buys (analysis/routed.py)
                alone["unrouted"] = analyzers_alone(env.settings.model_copy(update={"route_english": False}), texts)
                _log(f"analyzers alone, every text through the multilingual artifact: "
                     f"{alone['unrouted']['msgs_per_s']:.1f} msgs/s")
            _log(f"naive baseline on {naive_messages} messages")
            from bench.e2e_naive import run_naive

            naive = run_naive(env.database_url, env.settings, back["ids"][: max(1, naive_messages)])
            _log(f"naive: {naive['msgs_per_s']:.2f} msgs/s, {naive['cpu_s']:.0f} CPU-s")
        return report(concurrency, (back, backs, alones), other, st, steady_rate, duration, alone, naive, rss,
                      summaries, timeline_rows(st, timeline_s, duration) if timeline_s else [])
    finally:
        app.close()
        env.close()


def add_arguments(p: argparse.ArgumentParser, *, messages: bool = True) -> None:
    """The e2e options (``bench/__main__.py`` adds its shared ``--messages`` itself)."""
    if messages:
        p.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help="backlog events (default 2000)")
    p.add_argument("--duration", type=float, default=60.0, help="e2e: seconds of steady arrivals (default 60)")
    p.add_argument("--concurrency", "-c", type=int, default=None,
                   help="e2e: worker -c (default: the worker's, one process per core on CPU)")
    p.add_argument("--compare-concurrency", action=argparse.BooleanOptionalAction, default=True,
                   help="e2e: run the backlog rounds again with -c 1 (with -c 2 when -c is 1); default on")
    p.add_argument("--naive-messages", type=int, default=300, help="e2e: messages through the naive baseline (default 300)")
    p.add_argument("--rate", type=float, default=None, help="e2e: steady msgs/s (default: half the backlog rate)")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                   help=f"e2e: backlog + analyzers-alone rounds per -c, medians reported (default {DEFAULT_ROUNDS})")
    p.add_argument("--timeline", type=float, default=0.0, metavar="SECONDS",
                   help="e2e: sample memory, Redis, database size and summaries every SECONDS of the steady "
                        "phase and report it in slices of that length (a soak: with a long --duration)")
    p.add_argument("--distinct", action="store_true",
                   help="e2e: the steady phase sends texts drawn without repeats from every train text of the "
                        "datasets (~90k) instead of the backlog's mix over again: new words all along, as on a live stream")


def kwargs_from(a: argparse.Namespace, messages: int | None) -> dict:
    """``run()`` keyword arguments from parsed :func:`add_arguments` options."""
    return {"messages": messages or DEFAULT_MESSAGES, "duration": a.duration, "concurrency": a.concurrency,
            "compare_concurrency": a.compare_concurrency, "naive_messages": a.naive_messages, "rate": a.rate, "rounds": a.rounds,
            "timeline_s": a.timeline, "distinct": a.distinct}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.e2e``."""
    from bench.__main__ import print_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    a = p.parse_args(argv)
    print_table("e2e", run(**kwargs_from(a, a.messages)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
