"""``enrichment-ai beat``: the periodic scheduler (sweep, nightly rollups, partitions,
quiet-channel summaries). Run exactly one per deployment."""

from __future__ import annotations

import argparse

from enrichment_ai.config import Settings

HELP = "Run the Celery beat scheduler (sweeper, nightly rollups, partitions, summaries)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loglevel", "-l", default="INFO")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.cli.worker import require_urls
    from workers.app import create_app

    require_urls(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from enrichment_ai.observability import logs

    logs.install(settings)
    app = create_app(settings)
    app.start(["beat", "--loglevel", args.loglevel, "-s", str(settings.data_dir / "celerybeat-schedule")])
    return 0
