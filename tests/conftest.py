"""Shared fixtures: the session's services and a migrated, throw-away database.

With no ``ENRICHMENT_DATABASE_URL`` / ``ENRICHMENT_REDIS_URL`` the session starts its
own embedded PostgreSQL and Redis in a temp dir (parallel sessions never collide).
With URLs configured it uses those servers, but always in a freshly CREATEd database
that is dropped at the end, so tests never touch real data. A service that fails to
start is an error, never a skip.

Fixtures: ``services`` (session), ``database_url`` (session, fresh DB),
``migrated_db`` (session, URL of the migrated DB), ``redis_url`` (session),
``settings`` (session: Settings pointing at all of the above), ``conn`` (a new
autocommit connection per test), ``factory`` (helpers from tests/factories.py bound
to ``conn``: users, servers, channels, messages with any date).
Tests share the session database: create your own rows (fresh UUIDs) and never
assume a table is empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

import factories
from enrichment_ai import db
from enrichment_ai.config import Settings
from enrichment_ai.embedded import Services, start_services


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Configured or embedded PostgreSQL + Redis for the whole session."""
    with start_services(Settings(data_dir=tmp_path_factory.mktemp("services"))) as svc:
        yield svc


@pytest.fixture(scope="session")
def database_url(services: Services) -> Iterator[str]:
    """URL of a database created for this session only (dropped afterwards)."""
    name = f"enrichment_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(services.database_url, dbname=name)
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def migrated_db(database_url: str) -> str:
    """``database_url``, with every migration applied once."""
    with db.connect(database_url) as c:
        db.migrate(c)
    return database_url


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    """Redis URL (``redis+socket://`` for the embedded one); open with embedded.redis_client."""
    return services.redis_url


@pytest.fixture(scope="session")
def settings(migrated_db: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for code under test: the session's database and Redis."""
    return Settings(database_url=migrated_db, redis_url=redis_url, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture
def conn(migrated_db: str) -> Iterator[psycopg.Connection]:
    """A fresh autocommit connection to the migrated session database."""
    with db.connect(migrated_db) as c:
        yield c


@pytest.fixture
def factory(conn: psycopg.Connection) -> factories.Factory:
    """Row builders bound to ``conn`` (see tests/factories.py)."""
    return factories.Factory(conn)
