"""The running product on one machine: services, schema, workers and beat.

Shared by ``enrichment-ai run``/``demo`` and the benchmarks, so all of them start
workers exactly as docker-compose does (``enrichment-ai worker --queue cpu``, ``enrichment-ai
worker --queue background``, ``enrichment-ai beat``), as subprocesses with the services' URLs in their
environment. Each child runs in its own session (a terminal's Ctrl-C reaches only the
parent, which then stops them in order: worker warm shutdown, beat, services) and
gets a parent-death signal, so a hard-killed parent leaves no orphans.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from enrichment_ai.config import Settings

_PR_SET_PDEATHSIG = 1


def cli_argv(*args: str) -> list[str]:
    """``enrichment-ai ARGS`` run with this interpreter (same as the console script)."""
    return [sys.executable, "-m", "enrichment_ai", *args]


def service_env(settings: Settings, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment a worker/beat child needs: ours plus the resolved URLs."""
    env = dict(os.environ)
    env.update(ENRICHMENT_DATABASE_URL=database_url, ENRICHMENT_REDIS_URL=redis_url,
               ENRICHMENT_DATA_DIR=str(Path(settings.data_dir).resolve()), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: rely on stop()
        pass


def worker_url(admin_url: str) -> str:
    """URL of the worker role on the embedded server ``admin_url`` names (the role is made a
    login). A configured server's URL is used as given: there the platform's DBA grants
    ``enrichment_worker`` to the login user (docs/operations.md)."""
    from enrichment_ai.db import roles

    try:
        return roles.login_url(admin_url, roles.WORKER)
    except Exception:  # noqa: BLE001 - no CREATEROLE, or the role is missing: keep the URL
        return admin_url


@dataclass
class Child:
    """A started ``enrichment-ai`` subprocess with its log file."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    #: size of the log file when this process was started: the file is appended to by
    #: every run in the same data dir (a restarted worker, a second ``make run``)
    log_start: int = 0

    def log(self) -> str:
        """The whole log file so far (earlier runs in the same data dir included)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def own_log(self) -> str:
        """What this process wrote: the log file from :attr:`log_start` on."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", errors="replace")

    def wait_for_log(self, needle: str, timeout_s: float) -> None:
        """Block until this process writes ``needle`` (a line an earlier run left in the same
        file does not count); raise with the log tail otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.own_log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: no {needle!r} within {timeout_s}s:\n{self.log()[-4000:]}")

    def stacks(self, wait_s: float = 2.0) -> str:
        """The log tail after asking the process for every thread's stack: a diagnostic for
        a worker that is alive but silent (where is its event loop blocked?). Celery's
        worker installs a SIGUSR1 handler that logs them ("cry"); this only sends the
        signal and waits for the lines, so a stuck worker is described, not guessed at."""
        before = len(self.own_log())
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and len(self.own_log()) == before:
                time.sleep(0.1)
            time.sleep(0.3)  # the dump is written in several pieces
        state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        log = self.own_log()
        return f"{self.name} ({state}); its log from 4,000 characters before the dump:\n{log[max(0, before - 4000):]}"

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool processes)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Warm shutdown (SIGTERM to the main process only, as docker stops PID 1), then
        SIGKILL to the group after ``timeout_s``. SIGTERM to the whole group reached the
        pool processes too, which exit at once on it: the batch they held was lost
        mid-task and its messages recorded as suspects (celery/celery#2700)."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    """Start ``enrichment-ai ARGS`` in its own session, logging to ``log_dir/NAME.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        start = log.tell()
        proc = subprocess.Popen(cli_argv(*args), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
    return Child(name, proc, log_path, start)


@dataclass
class Stack:
    """Services + migrated schema + analysis worker + background worker (+ beat).
    Use as a context manager."""

    settings: Settings
    beat: bool = True
    worker_args: tuple[str, ...] = ()
    #: run summaries/sweeps/rollups in their own worker (off: no background worker at all)
    background: bool = True
    services: object = None
    children: list[Child] = field(default_factory=list)
    #: what worker and beat connect with (role ``enrichment_worker``)
    worker_database_url: str | None = None

    def start(self) -> Stack:
        from enrichment_ai import db
        from enrichment_ai.embedded import start_services

        self.services = start_services(self.settings)
        try:
            with db.connect(self.services.database_url) as conn:
                db.migrate(conn)
            # workers and beat connect as the least-privilege worker role (0060), not the owner
            self.worker_database_url = (worker_url(self.services.database_url)
                                        if not self.settings.database_url else self.services.database_url)
            env = service_env(self.settings, self.worker_database_url, self.services.redis_url)
            log_dir = Path(self.settings.data_dir).resolve() / "logs"
            self.children.append(spawn("worker", ["worker", "--queue", self.settings.queue,
                                                  *self.worker_args], env, log_dir))
            if self.background:
                # its own metrics port beside the analysis worker's (one host, two endpoints)
                port = self.settings.metrics_port + 1 if self.settings.metrics_port else 0
                self.children.append(spawn("background", ["worker", "--queue", "background"],
                                           {**env, "ENRICHMENT_METRICS_PORT": str(port)}, log_dir))
            if self.beat:
                self.children.append(spawn("beat", ["beat"], env, log_dir))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def worker(self) -> Child:
        return self.children[0]

    def check_alive(self) -> None:
        """Raise (with its log tail) if the worker or beat has exited."""
        for child in self.children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}; log "
                                   f"{child.log_path}:\n{child.log()[-3000:]}")

    def settings_with_urls(self) -> Settings:
        """``settings`` with the running services' URLs filled in."""
        return self.settings.model_copy(update={"database_url": self.services.database_url,
                                                "redis_url": self.services.redis_url})

    def stop(self) -> None:
        """Stop beat and worker (warm), then the services; idempotent."""
        while self.children:
            self.children.pop().stop()
        if self.services is not None:
            self.services.stop()
            self.services = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
