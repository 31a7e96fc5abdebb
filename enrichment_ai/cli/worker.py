"""``enrichment-ai worker``: a Celery worker for the ``cpu`` or ``gpu`` queue.

The command docker-compose, ``enrichment-ai run`` and the integration tests start.
Needs ``ENRICHMENT_REDIS_URL`` and ``ENRICHMENT_DATABASE_URL`` (``enrichment-ai run``
passes its embedded services' URLs). Models load once per pool process, after fork.
"""

from __future__ import annotations

import argparse

from enrichment_ai.config import Settings

HELP = "Run a Celery worker (micro-batched analysis) for the cpu or gpu queue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", choices=["cpu", "gpu"], help="queue to consume (default: ENRICHMENT_QUEUE)")
    parser.add_argument("--beat", action="store_true", help="also run the beat scheduler in this process")
    parser.add_argument("--concurrency", "-c", type=int, default=1,
                        help="pool processes, each with its own models (default 1)")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork",
                        help="prefork (models load after fork) or solo (one process)")
    parser.add_argument("--loglevel", "-l", default="INFO")
    parser.add_argument("--hostname", "-n", default=None, help="worker node name (default enrichment-QUEUE@%%h)")


def require_urls(settings: Settings) -> None:
    """Workers and beat join existing services; they never start embedded ones."""
    missing = [n for n in ("database_url", "redis_url") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"ENRICHMENT_{n.upper()}" for n in missing)
        raise SystemExit(f"enrichment-ai worker: set {names} (or use `enrichment-ai run`, "
                         "which starts services and a worker together)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.queue:
        settings = settings.model_copy(update={"queue": args.queue})
    require_urls(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from enrichment_ai import observability

    observability.setup_worker(settings, name=settings.queue)  # before the app imports metrics
    from workers.app import create_app
    from workers.context import install

    app = create_app(settings)
    install(settings)
    observability.serve_metrics(settings)
    argv = ["worker", "-Q", settings.queue, "-c", str(args.concurrency), "-P", args.pool,
            "--loglevel", args.loglevel, "-n", args.hostname or f"enrichment-{settings.queue}@%h",
            "--without-gossip", "--without-mingle"]
    if args.beat:
        argv += ["-B", "-s", str(settings.data_dir / "celerybeat-schedule")]
    app.worker_main(argv)
    return 0
