"""``enrichment-ai services``: run embedded PostgreSQL + Redis in the foreground."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading

from enrichment_ai.config import Settings

HELP = "Start embedded PostgreSQL and Redis under the data dir, print the URLs to export; Ctrl-C stops them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--migrate", action="store_true", help="apply migrations once the database is up")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.embedded import start_services
    from enrichment_ai.observability.redact import mask_url

    stop = threading.Event()

    def _on_signal(signum, frame):  # Ctrl-C, SIGTERM, SIGHUP: stop cleanly
        stop.set()

    # explicit SIGINT handler too: a shell starts background jobs with SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    with start_services(settings) as services:
        if args.migrate:
            from enrichment_ai import db

            with db.connect(services.database_url) as conn:
                for version in db.migrate(conn):
                    print(f"applied {version}", file=sys.stderr)
        # embedded URLs carry no password; a configured one is shown masked (the user has it)
        print(f"export ENRICHMENT_DATABASE_URL={shlex.quote(mask_url(services.database_url))}")
        print(f"export ENRICHMENT_REDIS_URL={shlex.quote(mask_url(services.redis_url))}")
        print("# services running; Ctrl-C to stop", file=sys.stderr, flush=True)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        print("# stopping services", file=sys.stderr, flush=True)
    return 0
