"""``enrichment-ai report``: PNG + HTML community health report for one server."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from uuid import UUID

from enrichment_ai.config import Settings

HELP = "Write a community health report (PNG + HTML) for --server S over the last --days days"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", type=UUID, required=True, help="server id")
    parser.add_argument("--days", type=int, default=30, help="days to show (default 30)")
    parser.add_argument("--last", type=date.fromisoformat, default=None, help="last UTC day (default: latest rolled up)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services
    from enrichment_ai.report import write_report

    with start_services(settings) as services, db.connect(services.database_url) as conn:
        try:
            png, page = write_report(conn, args.server, args.out, args.days, last=args.last)
        except LookupError as e:
            print(f"error: {e}")
            return 1
    print(f"wrote {png}\nwrote {page}")
    return 0
