"""The README's enqueue contract for non-Python platforms, exactly as documented:
LPUSH the README's Celery protocol v2 message onto the `cpu` list with a raw redis
client, and the session worker analyses the message."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import pytest

from celery_helpers import wait_analysed, wait_drained

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_json_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(re.escape(marker) + r"\s*```json\n(.*?)```", text, re.S)
    assert m, f"README has no JSON block after {marker}"
    return m.group(1)


def test_raw_lpush_of_the_documented_message_is_analysed(celery_worker, factory, conn, redis):
    mid = factory.message(content="Pushed by a platform that does not speak Python.")
    task_id = str(uuid.uuid4())
    body = readme_json_after("<!-- raw-body -->").replace("<message-uuid>", str(mid))
    envelope = (readme_json_after("<!-- raw-envelope -->")
                .replace("<base64 body>", base64.b64encode(body.encode()).decode())
                .replace("<task-uuid>", task_id).replace("<message-uuid>", str(mid)))
    json.loads(envelope)  # the documented text is valid JSON
    redis.lpush("cpu", envelope)
    rows = wait_analysed(conn, [mid], timeout_s=60)
    wait_drained(redis, "cpu")
    assert rows[mid]["count"] == 1 and rows[mid]["model_version"]


def test_a_raw_body_celery_cannot_unpack_is_rejected_and_the_worker_lives(celery_worker, factory, conn, redis):
    """A platform's bug — the body `[[], {"message_id": …}]` without its third element —
    killed the worker ("Unrecoverable error"), and the restored event every restart:
    now it is recorded in rejected_events, acked, and the next event is analysed."""
    marker = str(uuid.uuid4())
    body = json.dumps([[], {"message_id": marker}])
    envelope = (readme_json_after("<!-- raw-envelope -->")
                .replace("<base64 body>", base64.b64encode(body.encode()).decode())
                .replace("<task-uuid>", str(uuid.uuid4())).replace("<message-uuid>", marker))
    redis.lpush("cpu", envelope)
    mid = factory.message(content="Sent right after a broken event.")
    redis.lpush("cpu", readme_json_after("<!-- raw-envelope -->")
                .replace("<base64 body>", base64.b64encode(
                    readme_json_after("<!-- raw-body -->").replace("<message-uuid>", str(mid)).encode()).decode())
                .replace("<task-uuid>", str(uuid.uuid4())).replace("<message-uuid>", str(mid)))
    wait_analysed(conn, [mid], timeout_s=60)
    wait_drained(redis, "cpu")
    (raw,) = conn.execute("SELECT raw FROM rejected_events WHERE reason = 'malformed_id' AND raw LIKE %s",
                          (f"%{marker[:8]}%",)).fetchone()
    assert "malformed event body" in raw
    assert celery_worker.proc.poll() is None
