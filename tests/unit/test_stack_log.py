"""A child process's log: every run in a data dir appends to the same file, so waiting for
a line must only see what this process wrote (a restarted worker is not 'ready.' because
the one before it was)."""

from __future__ import annotations

import os
import sys

import pytest

from enrichment_ai.cli import stack


def test_wait_for_log_ignores_lines_an_earlier_run_left(tmp_path, monkeypatch):
    log = tmp_path / "worker.log"
    log.write_text("[old run] models loaded\n[old run] celery@host ready.\n")
    # the child: a Python process that writes one line after a short pause, then exits
    monkeypatch.setattr(stack, "cli_argv", lambda *a: [sys.executable, "-c", "import time; time.sleep(0.5); print('new ready.')"])
    child = stack.spawn("worker", [], dict(os.environ), tmp_path)
    assert child.log_start == len("[old run] models loaded\n[old run] celery@host ready.\n")
    with pytest.raises(TimeoutError):
        child.wait_for_log("models loaded", 0.2)  # only the old run wrote that
    child.wait_for_log("new ready.", 10)
    child.proc.wait(10)
    assert child.own_log() == "new ready.\n"
    assert child.log().startswith("[old run]") and child.log().endswith("new ready.\n")  # the file keeps both


def test_stop_signals_the_main_process_only(tmp_path, monkeypatch):
    """A warm shutdown is SIGTERM to the worker's main process, which lets its pool finish
    the batch; SIGTERM to the group reached the pool processes, which exit at once on it
    (the batch lost mid-task). The child here plays a worker with one pool process."""
    script = f"""
import os, signal, subprocess, sys, time
pool = subprocess.Popen([sys.executable, "-c", '''
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (open({str(tmp_path / "pool")!r}, "w").write("TERM"), sys.exit(1)))
print("pool ready", flush=True)
time.sleep(30)
'''])
def warm(*_a):
    time.sleep(0.3)  # finishing the batch
    pool.kill()
    sys.exit(0)
signal.signal(signal.SIGTERM, warm)
time.sleep(1.0)
print("worker ready", flush=True)
time.sleep(30)
"""
    monkeypatch.setattr(stack, "cli_argv", lambda *a: [sys.executable, "-c", script])
    child = stack.spawn("worker", [], dict(os.environ), tmp_path)
    child.wait_for_log("worker ready", 10)
    assert child.stop(10) == 0
    assert not (tmp_path / "pool").exists()  # the pool process never saw SIGTERM
