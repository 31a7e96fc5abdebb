"""PostgreSQL access: connections, versioned migrations, message partitions.

Migrations are the files ``migrations/NNNN_name.sql``, applied in name order, each in
its own transaction, and recorded in ``schema_migrations``. :func:`migrate` holds a
session advisory lock while it works, so any number of processes may call it at
start-up: one applies, the others wait and then find nothing left to do.

Numbering: 0001-0049 schema/pipeline core, 0050-0099 summaries and rollups.
The SQL of the analysis path lives in :mod:`enrichment_ai.db.store`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_lock key held while migrating (any constant shared by all migrators).
MIGRATE_LOCK_KEY = 0x656E7269  # "enri"
#: Partitions created around the current month by :func:`migrate`.
PARTITION_MONTHS_BACK = 12
PARTITION_MONTHS_AHEAD = 3

__all__ = ["Migration", "connect", "ensure_partitions", "migrate", "migrations", "applied_migrations"]


@dataclass(frozen=True)
class Migration:
    """One migration file: ``version`` is its name without ``.sql``."""

    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def connect(url: str, *, autocommit: bool = True, **kwargs) -> psycopg.Connection:
    """Open a psycopg 3 connection. Autocommit by default: code that needs several
    statements atomically uses ``with conn.transaction():`` (store functions do)."""
    return psycopg.connect(url, autocommit=autocommit, **kwargs)


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, in the order they apply."""
    return [Migration(p.stem, p) for p in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))]


def applied_migrations(conn: psycopg.Connection) -> list[str]:
    """Versions recorded in ``schema_migrations`` (empty if the table is absent)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return []
    return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def pending_migrations(conn: psycopg.Connection) -> list[str]:
    """Versions of this code's migrations the database has not applied (a read: any role
    that can read ``schema_migrations`` may ask)."""
    done = set(applied_migrations(conn))
    return [m.version for m in migrations() if m.version not in done]


def migrate(
    conn: psycopg.Connection,
    *,
    directory: Path = MIGRATIONS_DIR,
    months_back: int = PARTITION_MONTHS_BACK,
    months_ahead: int = PARTITION_MONTHS_AHEAD,
) -> list[str]:
    """Apply pending migrations (each atomically) and make sure message partitions
    exist around today. Returns the versions applied by this call (empty = up to date).

    Safe to call concurrently from many processes (advisory lock). ``conn`` must not
    be inside a transaction; it is left in autocommit mode as it was found.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("migrate() needs a connection that is not inside a transaction")
    was_autocommit = conn.autocommit
    conn.autocommit = True
    applied: list[str] = []
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version TEXT PRIMARY KEY,
                       checksum TEXT NOT NULL,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            done = set(applied_migrations(conn))
            for mig in migrations(directory):
                if mig.version in done:
                    continue
                with conn.transaction():
                    conn.execute(mig.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (mig.version, mig.checksum),
                    )
                applied.append(mig.version)
            if conn.execute("SELECT to_regproc('ensure_message_partitions')").fetchone()[0]:
                ensure_partitions(conn, months_back, months_ahead)
            if conn.execute("SELECT to_regproc('enrichment_apply_grants')").fetchone()[0]:
                conn.execute("SELECT enrichment_apply_grants()")  # roles for new tables (0060)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
    finally:
        conn.autocommit = was_autocommit
    return applied


def ensure_partitions(
    conn: psycopg.Connection,
    months_back: int = PARTITION_MONTHS_BACK,
    months_ahead: int = PARTITION_MONTHS_AHEAD,
) -> list[str]:
    """Create the monthly ``messages_YYYY_MM`` partitions (UTC) from ``months_back``
    before the current month to ``months_ahead`` after it; returns those created.
    Idempotent and safe to run concurrently (a beat task calls it daily). Months
    whose rows already sit in ``messages_default`` are left there (see docs/schema.md)."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT ensure_message_partitions(%s, %s)", (months_back, months_ahead)
        ).fetchall()
    return [r[0] for r in rows]
