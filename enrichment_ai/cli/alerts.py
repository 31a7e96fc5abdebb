"""``enrichment-ai alerts``: read a server's moderator alert stream (``--follow``: live)."""

from __future__ import annotations

import argparse
from uuid import UUID

from enrichment_ai.config import Settings

HELP = "Show moderator alerts of --server S from its Redis stream; --follow waits for new ones (XREAD BLOCK)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", type=UUID, required=True, help="server id")
    parser.add_argument("--follow", "-f", action="store_true", help="keep waiting for new alerts (Ctrl-C stops)")
    parser.add_argument("--last", type=int, default=20, help="show the last N alerts first (default 20)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai import alerts
    from enrichment_ai.embedded import redis_client, start_services

    with start_services(settings) as services:
        r = redis_client(services.redis_url)
        try:
            history = r.xrevrange(alerts.stream_key(args.server), count=args.last) if args.last else []
            last_id = "$"
            for entry_id, fields in reversed(history):
                print(alerts.format_alert(alerts._decode(fields)), flush=True)
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            if not args.follow:
                if not history:
                    print(f"no alerts for server {args.server}")
                return 0
            print(f"-- following {alerts.stream_key(args.server)} (Ctrl-C to stop)", flush=True)
            for _entry_id, fields in alerts.follow(r, args.server, last_id=last_id):
                print(alerts.format_alert(fields), flush=True)
        except KeyboardInterrupt:
            return 0
        finally:
            r.close()
    return 0
