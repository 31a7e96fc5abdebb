"""Embedded services: usable from other processes, stopped cleanly, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from enrichment_ai.config import Settings
from enrichment_ai.embedded import redis_client, start_services

pytestmark = pytest.mark.integration


def _server_pids(data_dir: Path) -> list[int]:
    """Pids of postgres/redis-server processes whose command line names data_dir's files."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (f"-D {data_dir}/pg" in cmd and "postgres" in cmd) or ("redis-server" in cmd and _redis_of(data_dir, cmd)):
            pids.append(int(proc.name))
    return pids


def _redis_of(data_dir: Path, cmd: str) -> bool:
    try:
        sock = (data_dir / "redis" / "endpoint").read_text().split()[1]
    except (OSError, IndexError):
        return False
    return sock in cmd


def _wait_gone(data_dir: Path, timeout_s: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := _server_pids(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _start_cli(data_dir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHMENT_")}
    env["ENRICHMENT_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "enrichment_ai", "services"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    urls = {}
    for _ in range(2):
        line = proc.stdout.readline()
        assert line.startswith("export "), (line, proc.stderr.read() if proc.poll() is not None else "")
        key, _, value = line[len("export "):].strip().partition("=")
        urls[key] = value.strip("'")
    return proc, urls


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_services_cli_serves_other_processes_and_leaves_no_orphans(tmp_path, how):
    data_dir = tmp_path / "d"
    proc, urls = _start_cli(data_dir)
    try:
        assert len(_server_pids(data_dir)) >= 2  # postgres postmaster (+ children) and redis
        # another process uses both servers by URL
        code = ("import os, psycopg; from enrichment_ai.embedded import redis_client;"
                "c = psycopg.connect(os.environ['ENRICHMENT_DATABASE_URL']);"
                "assert c.execute('select 41 + 1').fetchone()[0] == 42;"
                "r = redis_client(os.environ['ENRICHMENT_REDIS_URL']); r.set('k', 'v'); print(r.get('k').decode())")
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **urls},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "v", out.stderr
        # an in-process start on the same data dir attaches instead of starting twice
        with start_services(Settings(data_dir=data_dir)) as attached:
            assert not attached.embedded
            assert attached.redis_url == urls["ENRICHMENT_REDIS_URL"]
            assert redis_client(attached.redis_url).get("k") == b"v"
            with psycopg.connect(attached.database_url) as c:
                assert c.execute("select current_database()").fetchone()[0] == "enrichment"
        assert len(_server_pids(data_dir)) >= 2  # still running: the attacher does not stop them
        proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        rc = proc.wait(60)
        assert rc == (0 if how == "sigint" else -signal.SIGKILL)
        assert _wait_gone(data_dir) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # data persists: a restart on the same data dir sees it
    with start_services(Settings(data_dir=data_dir)) as again:
        assert again.embedded
        assert redis_client(again.redis_url).get("k") == b"v"
    assert _wait_gone(data_dir) == []


def test_start_failure_is_an_error_and_cleans_up(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("garbage\n")  # not a data dir postgres accepts
    with pytest.raises(Exception, match="postgres"):
        start_services(Settings(data_dir=tmp_path))
    assert _wait_gone(tmp_path) == []


def test_redis_client_accepts_url_forms(services):
    url = services.redis_url
    assert redis_client(url).ping()
    if url.startswith("redis+socket://"):
        path = url[len("redis+socket://"):]
        assert len(path) < 100
        assert redis_client(f"unix://{path}?db=3").connection_pool.connection_kwargs["db"] == 3
        assert redis_client(f"unix://{path}").ping()


def test_no_other_user_can_reach_the_embedded_services(services):
    """The cluster trusts local connections and Redis has no password: the sockets'
    directory (0700) and the sockets (0700) are the gate against other users of the host."""
    import stat

    sock = Path(services.redis_url[len("redis+socket://"):])
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
    pg_socks = list(sock.parent.glob(".s.PGSQL.*"))
    assert pg_socks and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in pg_socks if p.is_socket())


def test_an_interrupted_initdb_leaves_nothing_a_later_start_mistakes_for_a_cluster(tmp_path, monkeypatch):
    """initdb writes PG_VERSION early: interrupted (Ctrl-C during a first run), it left a
    half-built cluster that every later start failed on. Built beside and renamed, it
    leaves nothing."""
    from enrichment_ai import embedded

    def interrupted(argv, **_kw):
        data = Path(argv[argv.index("-D") + 1])
        (data / "PG_VERSION").write_text("18\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded.subprocess, "run", interrupted)
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    with pytest.raises(KeyboardInterrupt):
        embedded._initdb(pgdata, Path("/nonexistent"), None)
    assert not (pgdata / "PG_VERSION").exists() and not (tmp_path / "pg.initdb").exists()
