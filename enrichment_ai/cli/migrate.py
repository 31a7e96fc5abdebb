"""``enrichment-ai migrate``: apply pending schema migrations."""

from __future__ import annotations

import argparse

from enrichment_ai.config import Settings

HELP = "Apply pending database migrations (embedded PostgreSQL when no URL is set) and create message partitions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="only list migrations and whether each is applied")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services

    with start_services(settings) as services, db.connect(services.database_url) as conn:
        if args.list:
            done = set(db.applied_migrations(conn))
            for m in db.migrations():
                print(f"{'applied' if m.version in done else 'pending'}  {m.version}")
            return 0
        applied = db.migrate(conn)
        for version in applied:
            print(f"applied {version}")
        print(f"schema up to date ({len(db.applied_migrations(conn))} migrations"
              f"{', none new' if not applied else ''})")
    return 0
