"""``make chaos`` / ``python -m bench --only chaos``: the worker under injected faults.

A private PostgreSQL and Redis, a real ``enrichment-ai worker -c 2`` and ``enrichment-ai
beat`` (sweep grace 20 s, visibility timeout 60 s by default), N messages per scenario
sent as the platform sends them (``send_task``, no markers of ours), then faults: pool
process kills (+ one whole-worker kill), a Redis restart, a PostgreSQL restart (fast
stop), poison messages that SIGKILL the process analysing them
(``tests/faults/sitecustomize.py``), every event delivered twice. Per scenario:

* complete / settled s: every message has a row or a skip / and the queue is empty
  with nothing unacked;
* extra analyses: recomputations of an existing row, from ``ai_analysis.analyses``
  (migration 0065): total, messages re-analysed, max per message; plus the redelivered
  events acked without recomputing (worker log);
* lost (no row, no skip), duplicates (rows beyond one per message), process deaths
  (pool processes SIGKILLed, from the worker log), quarantined (``worker_lost`` skips).

:class:`Rig` is also the fixture of ``tests/reliability/test_faults_at_scale.py``.
"""

from __future__ import annotations

import json
import random
import re
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from bench.e2e import alert_times
from enrichment_ai.cli.stack import Child, service_env, spawn
from workers.context import pool_has_models
from enrichment_ai.config import Settings

FAULTS = str(Path(__file__).resolve().parents[1] / "tests" / "faults")
POISON = "POISON-PILL"
ANALYZE = "enrichment.analyze_message"
QUEUE = "cpu"
#: the worker settings the issue measured with
CHAOS_OVERRIDES = {"queue": QUEUE, "sweep_grace_s": 20, "sweep_interval_s": 15, "visibility_timeout_s": 60}
TEXTS = ("Message {i}: the release went out and everyone is happy about it.",
         "Message {i}: can someone review my pull request before the weekend?",
         "Message {i}: the server was down again this morning, so annoying.",
         "Message {i}: thanks for the help yesterday, you are the best!",
         "Message {i}: meeting moved to Thursday at 3pm in Berlin.",
         "Message {i}: ce soir on joue ensemble sur le serveur ?",
         "Message {i}: fuck you, you stupid worthless piece of shit")
#: the chaos server's alert threshold. Since the offensive-sets calibration (2026-12-07,
#: docs/models.md) the insult above scores ~0.99 and "so annoying" ~0.43 (bf16; near the
#: threshold, so it may or may not alert: the count reads the stored score either way), the
#: others under 0.05
ALERT_THRESHOLD = 0.4


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


class Rig:
    """Private services + analysis worker + background worker + beat, and the faults to
    inject into them (the analysis worker is the one killed)."""

    def __init__(self, root: Path, *, overrides: dict[str, Any] | None = None, concurrency: int = 2,
                 beat: bool = True) -> None:
        self.root = Path(root)
        self.overrides = {**CHAOS_OVERRIDES, **(overrides or {})}
        self.concurrency = concurrency
        self.with_beat = beat
        self.worker: Child | None = None
        self.background: Child | None = None
        self.beat: Child | None = None
        self.worker_kills = 0
        self.server_ids: list[uuid.UUID] = []  # one per messages() call, for the alert streams
        self.worker_crashes = 0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Rig:
        from enrichment_ai import db
        from enrichment_ai.embedded import _start_postgres, _start_redis, redis_client

        self.sock_dir = Path(tempfile.mkdtemp(prefix="enr-chaos-"))
        self.pg, self.database_url = _start_postgres(self.root / "pg", self.sock_dir)
        self.pg_port = int(parse_qs(urlsplit(self.database_url).query)["port"][0])
        self.redis_proc, self.redis_url = _start_redis(self.root / "redis", self.sock_dir)
        with db.connect(self.database_url) as c:
            db.migrate(c)
        self.settings = Settings(database_url=self.database_url, redis_url=self.redis_url,
                                 data_dir=self.root / "data").model_copy(update=self.overrides)
        self.conn = psycopg.connect(self.database_url, autocommit=True)
        self.redis = redis_client(self.redis_url)
        self.start_worker()
        if self.with_beat:  # the sweeper (and summaries) run on the background queue's worker
            self.background = spawn("background", ["worker", "--queue", "background"], self._env(),
                                    self.root / "logs")
            self.background.wait_for_log(" ready.", 300)
            self.beat = spawn("beat", ["beat"], self._env(), self.root / "logs")
        from workers.app import create_app

        self.app = create_app(self.settings)
        return self

    def _env(self) -> dict[str, str]:
        """What the worker and beat run with: the services, the overrides, fault injection."""
        extra = {f"ENRICHMENT_{k.upper()}": str(v) for k, v in self.overrides.items()}
        return service_env(self.settings, self.database_url, self.redis_url, ENRICHMENT_DEVICE="cpu",
                           PYTHONPATH=FAULTS, FAULT_POISON_MARKER=POISON, **extra)

    def stop(self) -> None:
        from enrichment_ai.embedded import _stop_process

        for child in (self.beat, self.background, self.worker):
            if child is not None:
                child.stop()
        for closer in (getattr(self, "app", None), getattr(self, "conn", None), getattr(self, "redis", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - best effort
                    pass
        _stop_process(self.redis_proc, signal.SIGTERM)
        _stop_process(self.pg, signal.SIGINT)

    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_worker(self) -> None:
        """Start the worker; return once every pool process has loaded the models."""
        offset = len(self.log())
        self.worker = spawn("worker", ["worker", "--queue", QUEUE, "-c", str(self.concurrency)],
                            self._env(), self.root / "logs")
        self.worker.wait_for_log(" ready.", 300)
        deadline = time.monotonic() + 300
        while not pool_has_models(self.log()[offset:], self.concurrency):
            if time.monotonic() > deadline or self.worker.proc.poll() is not None:
                raise RuntimeError(f"worker did not load its models:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.worker.log() if self.worker else ""

    def background_log(self) -> str:
        """The background worker's log (the sweeps)."""
        return self.background.log() if self.background else ""

    def supervise(self) -> None:
        """Restart a worker that exited, as docker-compose's ``restart: unless-stopped``
        does (counted in ``worker_crashes``: kombu's Redis transport can die with an
        AttributeError when the broker vanishes while messages are unacked)."""
        if self.worker is not None and self.worker.proc.poll() is not None:
            self.worker_crashes += 1
            self.start_worker()

    # --- data and events ---------------------------------------------------------------

    def messages(self, n: int, *, poison: int = 0, channels: int = 20) -> list[uuid.UUID]:
        """``n`` messages (``poison`` of them containing the fault marker, spread out),
        bulk-inserted; returns their ids in creation order."""
        users = [uuid.uuid4() for _ in range(10)]
        server, chans = uuid.uuid4(), [uuid.uuid4() for _ in range(channels)]
        with self.conn.transaction():
            self.conn.execute("INSERT INTO users (id, username, email, password_hash) "
                              "SELECT u, 'u' || left(u::text, 8), u::text || '@x.test', 'x' FROM unnest(%s::uuid[]) u",
                              (users,))
            self.conn.execute("INSERT INTO servers (id, name, owner_id) VALUES (%s, 'chaos', %s)", (server, users[0]))
            self.conn.execute("INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, %s)",
                              (server, ALERT_THRESHOLD))
            self.server_ids.append(server)
            self.conn.execute("INSERT INTO channels (id, server_id, type, name) "
                              "SELECT c, %s, 0, 'ch' FROM unnest(%s::uuid[]) c", (server, chans))
            ids = [uuid.uuid4() for _ in range(n)]
            bad = {round((k + 0.5) * n / poison) for k in range(poison)} if poison else set()
            texts = [(f"{POISON} message {i}" if i in bad else TEXTS[i % len(TEXTS)].format(i=i))
                     for i in range(n)]
            self.conn.execute(
                "INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at) "
                "SELECT i, c, a, t, now(), now() FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[]) "
                "AS x(i, c, a, t)",
                (ids, [chans[i % channels] for i in range(n)], [users[i % 10] for i in range(n)], texts))
        self.poison_ids = [ids[i] for i in sorted(bad)]
        return ids

    def send(self, ids: Sequence, **kwargs) -> None:
        """``analyze_message`` per id, as the platform sends it (one connection)."""
        with self.app.producer_or_acquire() as producer:
            for mid in ids:
                self.app.send_task(ANALYZE, kwargs={"message_id": str(mid), **kwargs}, producer=producer)

    # --- faults ------------------------------------------------------------------------

    def pool_pids(self) -> list[int]:
        """The worker's pool processes (its direct children; beat runs separately)."""
        pid = self.worker.proc.pid
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(k) for k in kids]

    def kill_pool_process(self, *, every: bool = False) -> bool:
        """SIGKILL one pool process at random (it may be idle), or ``every`` one of them
        (whichever holds a batch loses it)."""
        import os

        pids = self.pool_pids()
        killed = False
        for pid in (pids if every else random.sample(pids, min(1, len(pids)))):
            try:
                os.kill(pid, signal.SIGKILL)
                killed = True
            except ProcessLookupError:
                pass
        return killed

    def kill_worker(self) -> None:
        """SIGKILL the whole worker (consumer and pool), then start a new one."""
        self.worker.kill()
        self.worker_kills += 1
        self.start_worker()

    def restart_redis(self, down_s: float) -> None:
        from enrichment_ai.embedded import _start_redis, _stop_process

        _stop_process(self.redis_proc, signal.SIGTERM)  # AOF: the queue survives
        time.sleep(down_s)
        self.redis_proc, url = _start_redis(self.root / "redis", self.sock_dir)
        assert url == self.redis_url

    def restart_postgres(self, down_s: float) -> None:
        from enrichment_ai.embedded import _start_postgres, _stop_process

        _stop_process(self.pg, signal.SIGINT)  # fast shutdown: sessions are terminated
        time.sleep(down_s)
        self.pg, url = _start_postgres(self.root / "pg", self.sock_dir, port=self.pg_port)
        assert url == self.database_url
        self.conn = psycopg.connect(self.database_url, autocommit=True)

    # --- observation -------------------------------------------------------------------

    def done(self, ids: Sequence) -> int:
        """Messages with a row or a skip record."""
        return self._query(
            "SELECT count(*) FROM unnest(%s::uuid[]) i WHERE EXISTS (SELECT 1 FROM ai_analysis a "
            "WHERE a.message_id = i) OR EXISTS (SELECT 1 FROM analysis_skips s WHERE s.message_id = i)",
            (list(ids),))[0]

    def drained(self) -> bool:
        try:
            return self.redis.llen(QUEUE) == 0 and self.redis.hlen("unacked") == 0
        except Exception:  # noqa: BLE001 - Redis restarting
            return False

    def unacked_tasks(self) -> dict[str, Any]:
        """What is unacked now (what a scenario that did not settle holds): task name ->
        deliveries, and for analysis events the holder their pending marker names
        (workers.markers) with whether that holder is alive."""
        from collections import Counter

        from workers import markers

        out: Counter = Counter()
        try:
            for tag, raw in self.redis.hgetall("unacked").items():
                try:
                    envelope = json.loads(raw)[0]
                    task = envelope.get("headers", {}).get("task", "?")
                    mid = markers.envelope_message_id(envelope) if task == ANALYZE else None
                    if mid is not None:
                        holder = markers.pending_holders(self.redis, [mid]).get(mid, "no marker")
                        alive = holder != markers.QUEUED and bool(self.redis.exists(markers.ALIVE + holder))
                        score = self.redis.zscore("unacked_index", tag)
                        task = f"{task} [{holder}{' alive' if alive else ''}, delivered {score and time.strftime('%H:%M:%S', time.localtime(score))}]"
                    out[task] += 1
                except (ValueError, TypeError, IndexError, AttributeError):
                    out["?"] += 1
        except Exception as exc:  # noqa: BLE001 - Redis restarting
            return {"unreadable": repr(exc)}
        return dict(out)

    def _query(self, sql: str, params: tuple) -> tuple:
        for _ in range(100):
            try:
                return self.conn.execute(sql, params).fetchone()
            except psycopg.OperationalError:  # PostgreSQL restarting
                time.sleep(0.2)
                try:
                    self.conn = psycopg.connect(self.database_url, autocommit=True)
                except psycopg.OperationalError:
                    pass
        raise RuntimeError("database unreachable")

    def wait_settled(self, ids: Sequence, t0: float, timeout_s: float, *, tick=None) -> tuple[float | None, float | None]:
        """Seconds from ``t0`` until complete and until settled (None: not within timeout).
        ``tick(elapsed)`` runs every poll (fault injection)."""
        complete = settled = None
        n = len(ids)
        while time.monotonic() - t0 < timeout_s:
            self.supervise()
            if tick is not None:
                tick(time.monotonic() - t0)
            if complete is None and self.done(ids) == n:
                complete = time.monotonic() - t0
            if complete is not None and self.drained():
                time.sleep(1.0)  # an ETA-held retry or a restored message would show by now
                if self.drained() and self.done(ids) == n:
                    settled = time.monotonic() - t0
                    break
            time.sleep(0.25)
        return complete, settled

    def figures(self, ids: Sequence, log_from: int, background_from: int = 0) -> dict[str, Any]:
        """One scenario's numbers; ``log_from``/``background_from``: where its part of the
        analysis worker's / background worker's log starts."""
        ids = list(ids)
        rows, distinct, extra, reanalysed, most = self._query(
            "SELECT count(*), count(DISTINCT message_id), COALESCE(sum(analyses - 1), 0), "
            "count(*) FILTER (WHERE analyses > 1), COALESCE(max(analyses), 0) "
            "FROM ai_analysis WHERE message_id = ANY(%s)", (ids,))
        skipped = self._query("SELECT count(*) FROM analysis_skips WHERE message_id = ANY(%s)", (ids,))[0]
        quarantined = self._query("SELECT array_agg(message_id) FROM analysis_skips "
                                  "WHERE message_id = ANY(%s) AND reason = 'worker_lost'", (ids,))[0] or []
        flagged = self._query("SELECT array_agg(message_id) FROM ai_analysis WHERE message_id = ANY(%s) "
                              "AND toxicity_score >= %s", (ids, ALERT_THRESHOLD))[0] or []
        alerted = {m: len(t) for m, t in alert_times(self.redis, self.server_ids, set(ids)).items()}
        log = self.log()[log_from:]
        return {
            "flagged": len(flagged),
            "alerts_missing": sum(1 for m in flagged if not alerted.get(m)),
            "alerts_duplicate": sum(n - 1 for n in alerted.values() if n > 1),
            "lost": len(ids) - self.done(ids),
            "duplicates": rows - distinct,
            "extra": int(extra), "reanalysed": int(reanalysed), "max": int(most),
            "acked_no_recompute": sum(int(m) for m in re.findall(r" (\d+) already analysed", log)),
            "deaths": _count(r"exited with 'signal 9", log),
            "quarantined": list(quarantined), "skipped": skipped,
            "failed_batches": _count(r"transient error on a batch", log),
            "sweeps_reenqueued": sum(int(m) for m in re.findall(r"sweep: re-enqueued (\d+)",
                                                                 self.background_log()[background_from:])),
        }


# --- scenarios ---------------------------------------------------------------------------


def scenario(rig: Rig, name: str, n: int, timeout_s: float) -> dict[str, Any]:
    """Run one scenario on ``rig`` with ``n`` fresh messages; one table row."""
    poison = 3 if name == "poison" else 0
    ids = rig.messages(n, poison=poison)
    log_from, background_from = len(rig.log()), len(rig.background_log())
    faults = "—"
    outage = 0.0
    t0 = time.monotonic()
    rig.send(ids)
    if name == "twice":
        rig.send(ids)
        faults = f"{n} events sent twice"
    tick = None
    if name == "pool kills":
        kills = max(2, round(12 * n / 3000))
        # one fault every ~4 s; the clock restarts when the restarted worker is up, so the
        # kills that fell due while it loaded do not land on it back to back (4 in 1 s
        # killed the same restored suspects alone twice: a rig artefact, not a fault model)
        state = {"kills": 0, "worker_killed": False, "last": time.monotonic() - 2.0}

        def tick(elapsed: float) -> None:
            since = time.monotonic() - state["last"]
            if state["kills"] < kills and since > 4 and rig.kill_pool_process():
                state["kills"] += 1
                state["last"] = time.monotonic()
            elif (not state["worker_killed"] and state["kills"] >= kills // 2 and rig.done(ids) < n
                  and since > 3):  # the consumer has logged the pool death
                state["worker_killed"] = True
                rig.kill_worker()
                state["last"] = time.monotonic()

        faults = f"{kills} pool SIGKILLs + 1 whole-worker kill"
    elif name in ("redis restart", "postgres restart"):
        while rig.done(ids) < n // 3 and time.monotonic() - t0 < timeout_s:
            time.sleep(0.2)
        t_out = time.monotonic()
        (rig.restart_redis if name == "redis restart" else rig.restart_postgres)(5.0)
        outage = time.monotonic() - t_out
        faults = f"{outage:.0f} s down" + (" (fast stop)" if name == "postgres restart" else "")
    elif name == "poison":
        faults = f"{poison} poison messages"
    complete, settled = rig.wait_settled(ids, t0, timeout_s, tick=tick)
    f = rig.figures(ids, log_from, background_from)
    innocent_quarantined = [q for q in f["quarantined"] if q not in set(rig.poison_ids if poison else [])]
    row = {
        "scenario": f"{name}, {n} messages",
        "faults": faults,
        "complete/settled s": f"{_s(complete)} / {_s(settled)}",
        "extra analyses (re-analysed, max)": f"{f['extra']} ({f['reanalysed']}, max {f['max']})",
        "acked w/o recompute": f["acked_no_recompute"],
        "lost": f["lost"], "duplicates": f["duplicates"],
        "alerts (missing, duplicate)": f"{f['flagged'] - f['alerts_missing']}/{f['flagged']} "
                                       f"({f['alerts_missing']}, {f['alerts_duplicate']})",
        "process deaths": f["deaths"] + rig.worker_kills,
        "quarantined": f"{len(f['quarantined'])}" + (f" ({len(innocent_quarantined)} innocent)" if poison or f["quarantined"] else ""),
        "failed batches": f["failed_batches"], "sweep re-enqueued": f["sweeps_reenqueued"],
        "outage s": round(outage, 1),
    }
    row["worker crashes"] = rig.worker_crashes
    rig.worker_kills = rig.worker_crashes = 0
    return row


def _s(v: float | None) -> str:
    return "never" if v is None else f"{v:.0f}"


SCENARIOS = ("no faults", "pool kills", "redis restart", "postgres restart", "poison", "twice")


def run(messages: int = 3000, timeout_s: float = 900, only: Sequence[str] | None = None, **_kw) -> list[dict]:
    """Every scenario on one rig (fresh messages each; the worker's log is read per
    scenario); rows for :func:`bench.__main__.print_table`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp, Rig(Path(tmp)) as rig:
        for name in only or SCENARIOS:
            rows.append(scenario(rig, name, messages, timeout_s))
            print(rows[-1], flush=True)
    return rows
