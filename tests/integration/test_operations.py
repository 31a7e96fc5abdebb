"""Operating a real worker: its /metrics after batches, its JSON logs (no message text, no
password), ``enrichment-ai health`` passing and failing, and the least-privilege roles.

One worker on the ``gpu`` queue (the session worker consumes ``cpu``) connects as the
worker role with a password in its URL, logs JSON and serves metrics on a free port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid

import psycopg
import pytest

from celery_helpers import start_worker, wait_analysed, wait_drained, wait_for
from enrichment_ai.cli.stack import cli_argv, service_env
from enrichment_ai.db import roles

pytestmark = pytest.mark.integration

PASSWORD = "pw-" + uuid.uuid4().hex[:10]
TOXIC = ["Shut up, you are a worthless idiot and everyone hates you.",
         "You are pathetic garbage, nobody wants your stupid opinions here."]
FRIENDLY = ["Thanks so much for the help yesterday, you are all wonderful!",
            "The release notes for version two are now on the wiki."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ops(settings, tmp_path_factory):
    """The gpu worker: worker role + password, JSON logs, metrics on a free port."""
    port = _free_port()
    url = roles.login_url(settings.database_url, roles.WORKER, password=PASSWORD)
    overrides = {"queue": "gpu", "batch_max_size": 8, "batch_max_wait_ms": 300, "metrics_port": port,
                 "metrics_addr": "127.0.0.1", "log_format": "json", "database_url": url}
    worker = start_worker(settings, tmp_path_factory.mktemp("ops-logs"), name="ops", overrides=overrides)
    wsettings = settings.model_copy(update={k: v for k, v in overrides.items()})
    yield worker, wsettings, port
    worker.stop()


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """``(name, labels) -> value`` of every sample on the endpoint."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples, name, **labels) -> float:
    want = frozenset(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def health(wsettings, *args, database_url=None) -> subprocess.CompletedProcess:
    env = service_env(wsettings, database_url or wsettings.database_url, wsettings.redis_url)
    return subprocess.run(cli_argv("health", *args), env=env, capture_output=True, text=True, timeout=120)


def test_metrics_count_a_real_batch_and_logs_hold_no_text_or_password(ops, factory, conn, redis):
    from workers.app import create_app
    from workers.tasks import enqueue_analyses

    worker, wsettings, port = ops
    channel = factory.channel()
    live = [factory.message(channel, content=t) for t in TOXIC + FRIENDLY]
    deleted = factory.message(channel, content="gone", deleted=True)
    unknown = uuid.uuid4()
    before = scrape(port)
    app = create_app(wsettings)
    try:
        enqueue_analyses(app, [*live, deleted, unknown])
        app.send_task("enrichment.analyze_message", kwargs={"message_id": "not-a-uuid"})
        rows = wait_analysed(conn, live)
        wait_drained(redis, "gpu")
    finally:
        app.close()
    after = wait_for(lambda: (s := scrape(port)) and value(s, "enrichment_events_received_total", queue="gpu")
                     - value(before, "enrichment_events_received_total", queue="gpu") >= 7 and s, 30,
                     "the batch in the metrics")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("enrichment_events_received_total", queue="gpu") == 7
    assert delta("enrichment_events_analysed_total", queue="gpu") == 4
    assert delta("enrichment_events_skipped_total", queue="gpu", reason="deleted") == 1
    assert delta("enrichment_events_skipped_total", queue="gpu", reason="not_found") == 1
    assert delta("enrichment_events_rejected_total", queue="gpu", reason="malformed_id") == 1
    batches = delta("enrichment_batches_total", queue="gpu")
    assert batches >= 1
    assert delta("enrichment_batch_size_events_count", queue="gpu") == batches
    assert delta("enrichment_batch_size_events_sum", queue="gpu") == 7
    assert delta("enrichment_batch_duration_seconds_count", queue="gpu") == batches
    for stage in ("fetch", "analyse", "write", "alerts"):
        assert delta("enrichment_batch_stage_duration_seconds_count", queue="gpu", stage=stage) >= 1, stage
    assert delta("enrichment_event_latency_seconds_count", queue="gpu", since="created") == 4
    # published by enqueue_analyses (header enqueued_at): the 6 ids, not the malformed one
    assert delta("enrichment_event_latency_seconds_count", queue="gpu", since="enqueued") == 6
    assert 0 < delta("enrichment_event_latency_seconds_sum", queue="gpu", since="created") < 4 * 300
    server = conn.execute("SELECT server_id FROM channels WHERE id = %s", (channel,)).fetchone()[0]
    streamed = redis.xlen(f"enrichment:alerts:{server}")
    assert delta("enrichment_alerts_published_total", queue="gpu") == streamed
    version = next(iter(rows.values()))["model_version"]
    assert value(after, "enrichment_model_info", model_version=version) == 1
    assert value(after, "enrichment_model_load_seconds") > 0
    assert value(after, "enrichment_queue_depth", queue="gpu") == 0
    assert ("enrichment_queue_depth", frozenset({("queue", "cpu")})) in after
    assert value(after, "enrichment_broker_up") == 1
    assert time.time() - value(after, "enrichment_last_batch_timestamp_seconds", queue="gpu") < 120

    log = worker.log()
    assert PASSWORD not in log
    for text in TOXIC + FRIENDLY:
        assert text not in log and text[:20] not in log
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    assert lines, "no JSON log lines"
    batch_lines = [x for x in lines if x.get("logger") == "enrichment.process" and "batch_id" in x]
    assert batch_lines
    b = batch_lines[-1]
    assert {"level", "ts", "task_ids", "events", "analysed", "skipped", "timings_s"} <= set(b)
    assert {"fetch", "analyse", "write", "total"} <= set(b["timings_s"])
    assert all(x["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for x in lines)


def test_health_passes_with_the_worker_and_fails_when_it_should(ops, redis):
    worker, wsettings, _port = ops
    ok = health(wsettings, "--queue", "gpu")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [ln.split()[1] for ln in ok.stdout.splitlines()] == ["db", "broker", "workers", "queues", "batch"]
    assert PASSWORD not in ok.stdout + ok.stderr

    role = health(wsettings, "--check", "roles")
    assert role.returncode == 0 and "connected user has enrichment_worker" in role.stdout, role.stdout

    named = health(wsettings, "--check", "workers", "--queue", "gpu", "--worker", "ops@%h")
    assert named.returncode == 0, named.stdout
    nobody = health(wsettings, "--check", "workers", "--queue", "gpu", "--worker", "nobody@nowhere",
                    "--timeout", "1")
    assert nobody.returncode == 1 and "FAIL workers" in nobody.stdout

    bad_port = _free_port()
    down = health(wsettings, "--check", "db", database_url=(
        f"postgresql://enrichment_worker:{PASSWORD}@127.0.0.1:{bad_port}/x"))
    assert down.returncode == 1 and "FAIL db" in down.stdout
    assert PASSWORD not in down.stdout + down.stderr

    too_deep = health(wsettings, "--check", "queues", "--queue", "gpu", "--max-queue-depth", "-1")
    assert too_deep.returncode == 1


def test_health_fails_without_a_worker_and_on_a_stale_backlog(ops, redis, factory):
    """After the worker stops: no worker answers for its queue, and an event waiting longer
    than --max-batch-age since the last batch fails the batch check."""
    worker, wsettings, _port = ops
    worker.stop()
    gone = health(wsettings, "--check", "workers", "--queue", "gpu", "--timeout", "1")
    assert gone.returncode == 1 and "FAIL workers" in gone.stdout
    idle = health(wsettings, "--check", "batch", "--queue", "gpu", "--max-batch-age", "1")
    assert idle.returncode == 0, idle.stdout  # nothing waits: an old last batch is fine
    from workers.app import create_app

    app = create_app(wsettings)
    try:
        app.send_task("enrichment.analyze_message", kwargs={"message_id": str(factory.message())})
    finally:
        app.close()
    try:
        time.sleep(1.5)
        stale = health(wsettings, "--check", "batch", "--queue", "gpu", "--max-batch-age", "1")
        assert stale.returncode == 1 and "waiting" in stale.stdout, stale.stdout
    finally:
        redis.delete("gpu")


def test_the_worker_role_reads_platform_data_and_cannot_change_it(migrated_db, celery_worker, producer,
                                                                   conn, factory):
    """The session worker runs as enrichment_worker (and analyses as it); that role may write
    only the pipeline's tables: no DDL, no UPDATE/DELETE on platform data, no secret columns."""
    mid = factory.message(content="platform data")
    producer.send_task("enrichment.analyze_message", kwargs={"message_id": str(mid)})
    wait_analysed(conn, [mid])
    users = {r[0] for r in conn.execute(
        "SELECT usename FROM pg_stat_activity WHERE application_name = 'enrichment-worker:cpu' "
        "AND datname = current_database()")}
    assert users == {roles.WORKER}
    url = roles.login_url(migrated_db, roles.WORKER)
    with psycopg.connect(url, autocommit=True) as w:
        assert w.execute("SELECT content FROM messages WHERE id = %s", (mid,)).fetchone() == ("platform data",)
        for stmt in ("UPDATE messages SET content = 'x' WHERE id = %s", "DELETE FROM messages WHERE id = %s",
                     "DELETE FROM users WHERE id = (SELECT author_id FROM messages WHERE id = %s)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                w.execute(stmt, (mid,))
        for stmt in ("ALTER TABLE messages ADD COLUMN hacked int", "ALTER TABLE ai_analysis DROP COLUMN details",
                     "CREATE TABLE worker_made (i int)", "DROP TABLE community_health",
                     "TRUNCATE ai_analysis", "SELECT password_hash FROM users LIMIT 1",
                     "DELETE FROM schema_migrations"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                w.execute(stmt)
        assert w.execute("SELECT count(*) FROM ensure_message_partitions(1, 1)").fetchone()[0] >= 0
    assert conn.execute("SELECT content FROM messages WHERE id = %s", (mid,)).fetchone() == ("platform data",)


def test_the_readonly_role_reads_dashboard_tables_only(migrated_db):
    url = roles.login_url(migrated_db, roles.READONLY)
    with psycopg.connect(url, autocommit=True) as r:
        for table in ("community_health", "reputation_scores", "conversation_summaries", "ai_analysis"):
            r.execute(f"SELECT count(*) FROM {table}")
        r.execute("SELECT id, name FROM servers LIMIT 1")
        for stmt in ("SELECT content FROM messages LIMIT 1", "SELECT email FROM users LIMIT 1",
                     "INSERT INTO community_health (server_id, date) VALUES (gen_random_uuid(), current_date)",
                     "DELETE FROM ai_analysis"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute(stmt)


def test_pipeline_objects_belong_to_the_migrator(conn):
    owners = dict(conn.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname = ANY(%s)",
        (["ai_analysis", "community_health", "reputation_scores", "activity_daily", "rollup_dirty", "messages"],)))
    assert {k: v for k, v in owners.items() if k != "messages"} == dict.fromkeys(
        ["ai_analysis", "community_health", "reputation_scores", "activity_daily", "rollup_dirty"], roles.MIGRATOR)
    assert owners["messages"] != roles.MIGRATOR  # the platform's table stays the platform's
