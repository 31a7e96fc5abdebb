"""``enrichment-ai health``: exit 0 when the pipeline is healthy, 1 otherwise.

For container health checks (docker-compose uses it for workers and beat) and for people:
one line per check. Checks and thresholds: :mod:`enrichment_ai.observability.health`.
"""

from __future__ import annotations

import argparse

from enrichment_ai.config import Settings

HELP = "Check database, broker, workers (ping), queue depth and last batch age; exit 0 healthy, 1 not"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from enrichment_ai.observability.health import ALL_CHECKS, DEFAULT_CHECKS

    parser.add_argument("--check", action="append", metavar="NAME",
                        help=f"check(s) to run, repeatable or comma-separated: {', '.join(ALL_CHECKS)} "
                             f"(default: {','.join(DEFAULT_CHECKS)})")
    parser.add_argument("--queue", action="append", metavar="Q",
                        help="queue(s) that must have a worker, repeatable (default: ENRICHMENT_QUEUE)")
    parser.add_argument("--worker", metavar="NAME",
                        help="only this worker must answer, e.g. enrichment-cpu@%%h (%%h: this host)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")
    parser.add_argument("--max-queue-depth", type=int, default=10000, help="deepest healthy queue (default 10000)")
    parser.add_argument("--max-batch-age", type=float, default=600.0,
                        help="seconds since the last batch while events wait (default 600)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.cli.worker import require_urls
    from enrichment_ai.observability.health import ALL_CHECKS, DEFAULT_CHECKS, run_checks

    checks = [c.strip() for arg in (args.check or [",".join(DEFAULT_CHECKS)]) for c in arg.split(",") if c.strip()]
    unknown = sorted(set(checks) - set(ALL_CHECKS))
    if unknown:
        raise SystemExit(f"enrichment-ai health: unknown check(s) {', '.join(unknown)}; "
                         f"known: {', '.join(ALL_CHECKS)}")
    require_urls(settings)
    queues = args.queue or [settings.queue]
    results = run_checks(settings, checks, queues, worker=args.worker, timeout_s=args.timeout,
                         max_queue_depth=args.max_queue_depth, max_batch_age_s=args.max_batch_age)
    for r in results:
        print(r.line(), flush=True)
    return 0 if all(r.ok for r in results) else 1
