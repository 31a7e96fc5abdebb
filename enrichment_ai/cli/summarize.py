"""``enrichment-ai summarize``: summarise a channel's current window now."""

from __future__ import annotations

import argparse
from uuid import UUID

from enrichment_ai.config import Settings

HELP = "Summarise --channel C's messages since its last summary (use --if-due to honour the triggers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel", type=UUID, required=True, help="channel id")
    parser.add_argument("--if-due", action="store_true", help="only when the count/quiet trigger says so")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import db
    from enrichment_ai.embedded import start_services
    from enrichment_ai.pipeline import Enricher
    from enrichment_ai.summaries import summarize_channel

    with start_services(settings) as services, db.connect(services.database_url) as conn:
        enricher = Enricher(settings).load()
        sid = summarize_channel(conn, args.channel, enricher, settings, force=not args.if_due)
        if sid is None:
            print("nothing to summarise (no new analysed messages since the last summary)")
            return 0
        summary, points, ids, count = conn.execute(
            "SELECT summary, key_points, key_point_message_ids, message_count FROM conversation_summaries WHERE id = %s",
            (sid,)).fetchone()
    print(f"summary {sid} ({count} messages)\n{summary}")
    for p, mid in zip(points, ids, strict=True):
        print(f"  • {p}  [{mid}]")
    return 0
