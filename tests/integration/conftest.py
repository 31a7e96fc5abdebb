"""A real Celery worker for the integration tests, started as users start it.

``celery_worker`` runs ``enrichment-ai worker --queue cpu`` (the docker-compose
command) as a subprocess against the session's PostgreSQL and Redis, once per session
(models load once), and stops it with a warm shutdown at the end. ``producer`` is a
Celery app in the test process, as the platform would hold one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celery_helpers import start_worker
from enrichment_ai.cli.stack import Child
from enrichment_ai.config import Settings
from enrichment_ai.embedded import redis_client

#: The session worker's settings on top of the session's: small batches so a few dozen
#: events make several, a short sweep grace for the sweeper test.
WORKER_OVERRIDES = {"queue": "cpu", "batch_max_size": 16, "batch_max_wait_ms": 300,
                    "sweep_grace_s": 30, "task_max_retries": 5, "summary_min_interval_s": 0}


@pytest.fixture(scope="session")
def worker_settings(settings: Settings) -> Settings:
    """What the session worker runs with (``settings`` + :data:`WORKER_OVERRIDES`)."""
    return settings.model_copy(update=WORKER_OVERRIDES)


@pytest.fixture(scope="session")
def celery_worker(worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """A real ``enrichment-ai worker --queue cpu,background`` subprocess for the whole
    session (analysis and the background tasks in one worker, as a small setup runs it)."""
    child = start_worker(worker_settings, tmp_path_factory.mktemp("worker-logs"), name="it-worker",
                         overrides=WORKER_OVERRIDES, queues="cpu,background")
    yield child
    child.stop()


@pytest.fixture(scope="session")
def producer(worker_settings: Settings):
    """A Celery app in the test process for ``send_task``."""
    from workers.app import create_app

    app = create_app(worker_settings)
    yield app
    app.close()


@pytest.fixture
def redis(redis_url: str):
    """A raw redis-py client on the broker's Redis."""
    client = redis_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def fresh_db(services) -> Iterator[str]:
    """An empty database of its own, dropped afterwards (tests that migrate from scratch,
    or keep the rollups' state out of the session's database)."""
    import psycopg
    from psycopg import sql

    name = f"enrichment_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(services.database_url, dbname=name)
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
