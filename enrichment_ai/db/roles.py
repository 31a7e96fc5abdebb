"""The pipeline's database roles (migration 0060) and connection URLs for them.

``enrichment_worker`` (workers and beat), ``enrichment_migrator`` (owns the pipeline's
schema objects), ``enrichment_readonly`` (dashboards). The migration creates them as
group roles without LOGIN; a deployment grants them to its own login users. The
embedded setup (and the tests) log in as the roles themselves: :func:`login_url`.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

WORKER = "enrichment_worker"
MIGRATOR = "enrichment_migrator"
READONLY = "enrichment_readonly"
ROLES = (MIGRATOR, WORKER, READONLY)

_MISSING_SQL = "SELECT r FROM unnest(%s::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)"
_MEMBER_SQL = "SELECT r FROM unnest(%s::text[]) r WHERE pg_has_role(current_user, r, 'USAGE')"


def login_url(admin_url: str, role: str, *, password: str | None = None) -> str:
    """``admin_url`` with ``user=role`` (and ``password``), after letting ``role`` log in
    (``ALTER ROLE … LOGIN``, as an admin with CREATEROLE). For the embedded setup and tests;
    production grants the group role to a login user instead."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        stmt = sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role))
        if password is not None:
            stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(password))
        conn.execute(stmt)
    kwargs = {"user": role}
    if password is not None:
        kwargs["password"] = password
    return psycopg.conninfo.make_conninfo(admin_url, **kwargs)


def missing_roles(conn: psycopg.Connection) -> list[str]:
    """Which of :data:`ROLES` do not exist in the cluster."""
    return [r[0] for r in conn.execute(_MISSING_SQL, (list(ROLES),))]


def roles_of_current_user(conn: psycopg.Connection) -> list[str]:
    """Which of :data:`ROLES` the connected user has the privileges of."""
    return [r[0] for r in conn.execute(_MEMBER_SQL, (list(ROLES),))]
