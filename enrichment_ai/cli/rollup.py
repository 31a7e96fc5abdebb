"""``enrichment-ai rollup``: community health + reputation for a UTC day or a range.

Runs as whatever role it is given, typically ``enrichment_worker`` (as the beat's
``nightly_rollup`` does), which may not change the schema: it never migrates, and
refuses to run on a schema with pending migrations (``enrichment-ai migrate`` first).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from enrichment_ai.config import Settings

HELP = "Nightly rollups (community_health, reputation_scores) for --date D (default: yesterday, UTC) or --from/--to"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=date.fromisoformat, help="UTC day YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, help="backfill: first UTC day")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, help="backfill: last UTC day (default: yesterday)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services
    from enrichment_ai.rollups import rollup_range, yesterday_utc

    if args.date and (args.first or args.last):
        print("use either --date or --from/--to")
        return 2
    last = args.date or args.last or yesterday_utc()
    first = args.date or args.first or last
    with start_services(settings) as services, db.connect(services.database_url) as conn:
        pending = db.pending_migrations(conn)
        if pending:
            print(f"the database schema is not current: {len(pending)} migration(s) pending "
                  f"({', '.join(pending)}); run `enrichment-ai migrate` (as the schema's owner) "
                  "first, then the rollup again", file=sys.stderr)
            return 1
        out = rollup_range(conn, first, last, toxicity_threshold=settings.toxicity_threshold)
    print(json.dumps(out, indent=2))
    return 0
