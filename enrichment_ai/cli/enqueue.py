"""``enrichment-ai enqueue ID…`` / ``enrichment-ai enqueue --missing-since T`` (= ``backfill``).

Sends ``enrichment.analyze_message`` events exactly as the platform does, to the queue
``ENRICHMENT_QUEUE`` names. ``--missing-since`` selects every live message created
at or after T that has no analysis for the current model version (loading the models
once to learn that version, unless ``--model-version`` is given).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from enrichment_ai.config import Settings

HELP = "Enqueue analyze_message events for message ids, or for every message missing an analysis since T"

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str) -> datetime:
    """ISO 8601 (``2025-01-31``, ``2025-01-31T12:00:00+00:00``; naive = UTC) or a
    relative age such as ``90m``, ``6h``, ``7d``."""
    m = _RELATIVE.match(value.strip())
    if m:
        return datetime.now(UTC) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time: {value!r} (ISO 8601 or e.g. 6h, 7d)") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=UUID, metavar="MESSAGE_ID", help="message ids to enqueue")
    parser.add_argument("--missing-since", "--since", dest="since", type=parse_since, metavar="T",
                        help="every message created since T without an analysis (ISO 8601 or 6h/7d)")
    parser.add_argument("--limit", type=int, default=100_000, help="most messages enqueued by --missing-since")
    parser.add_argument("--model-version", default=None,
                        help="version to check analyses against (default: load the models and ask)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be enqueued")
    parser.add_argument("--force", action="store_true",
                        help="recompute messages that already have an analysis for this model version "
                             "(or were quarantined as worker_lost); otherwise such events are acked as done")


def add_backfill_defaults(parser: argparse.ArgumentParser) -> None:
    """``enrichment-ai backfill`` = ``enqueue --missing-since`` (default: the last 7 days)."""
    parser.set_defaults(since=parse_since("7d"))
    parser.description = (f"{HELP}. backfill: --missing-since defaults to 7d (re-scores the last 7 days "
                          "for the current model version, e.g. after an upgrade, through the backfill queue "
                          "(cpu.backfill), which the analysis workers take from in turn with live events)")


def missing_since(settings: Settings, since: datetime, limit: int, model_version: str | None) -> list[UUID]:
    """Live messages created since ``since`` without an analysis for the model version."""
    from enrichment_ai import db
    from enrichment_ai.db import store

    if model_version is None:
        from enrichment_ai.pipeline import Enricher

        model_version = Enricher(settings).load().model_version
    with db.connect(settings.database_url) as conn:
        return store.messages_missing_analysis(conn, model_version, older_than_s=0, since=since, limit=limit)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.cli.worker import require_urls
    from workers.app import backfill_queue, create_app
    from workers.tasks import enqueue_analyses

    if not args.ids and not args.since:
        raise SystemExit("enrichment-ai enqueue: give message ids or --missing-since T")
    require_urls(settings)
    ids: list[UUID] = list(args.ids)
    if args.since:
        ids += missing_since(settings, args.since, args.limit, args.model_version)
    if args.dry_run:
        print("\n".join(map(str, ids)))
        print(f"{len(ids)} messages would be enqueued to {settings.queue!r}")
        return 0
    # history (--missing-since) goes to the backfill queue, which the analysis workers take
    # from in turn with the live one: a backfill never queues ahead of live events
    history, named = ids[len(args.ids):], list(args.ids)
    app = create_app(settings)
    try:
        n = enqueue_analyses(app, named, force=args.force)
        m = enqueue_analyses(app, history, force=args.force, queue=backfill_queue(settings.queue))
    finally:
        app.close()
    if named:
        print(f"enqueued {n} enrichment.analyze_message events to queue {settings.queue!r}")
    if args.since:
        print(f"enqueued {m} enrichment.analyze_message events to queue {backfill_queue(settings.queue)!r} "
              "(consumed by the analysis workers in turn with live events)")
    return 0
