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
