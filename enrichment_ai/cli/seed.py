"""``enrichment-ai seed``: fill the database with realistic synthetic chat activity."""

from __future__ import annotations

import argparse

from enrichment_ai.config import Settings

HELP = "Generate synthetic servers, members, messages, reactions, analyses and moderation (server-side, fast)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=100_000, help="messages to create (default 100000)")
    parser.add_argument("--servers", type=int, default=10, help="servers (default 10)")
    parser.add_argument("--days", type=int, default=30, help="spread over the last N UTC days (default 30)")
    parser.add_argument("--users", type=int, default=None, help="people (default messages/40)")
    parser.add_argument("--rollup", action="store_true", help="also run the rollups over the seeded days")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services
    from enrichment_ai.rollups import rollup_range
    from enrichment_ai.seed import seed, seeded_servers

    with start_services(settings) as services, db.connect(services.database_url) as conn:
        db.migrate(conn)
        res = seed(conn, args.messages, servers=args.servers, days=args.days, users=args.users)
        print(f"seeded {res.messages:,} messages ({res.toxic:,} toxic) from {res.users:,} people in "
              f"{res.servers} servers, {res.first:%Y-%m-%d} .. {res.last:%Y-%m-%d} UTC, in {res.seconds:.1f}s (tag {res.tag})")
        for sid, name in seeded_servers(conn, res.tag, args.servers):
            print(f"  server {sid}  {name}")
        if args.rollup:
            out = rollup_range(conn, res.first.date(), res.last.date(), toxicity_threshold=settings.toxicity_threshold)
            print(f"rolled up {out['health_rows']} server-days and {out['reputation_rows']} reputations in {out['total_s']}s")
    return 0
