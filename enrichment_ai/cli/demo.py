"""``enrichment-ai demo``: the ``make run`` flow once, as a table, then exit 0.

Starts services (embedded unless ``ENRICHMENT_*_URL`` are set), migrates, starts a
worker and beat, feeds the sample conversation through Celery, prints every analysis,
the moderation alerts, conversation summaries and the sample days' rollups, and stops
everything. Exits 1 if analyses are missing after ``--timeout``.
"""

from __future__ import annotations

import argparse
import time

from enrichment_ai.config import Settings

HELP = "Run the sample conversation through the real pipeline once and print the results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the analyses")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.cli.live import SampleRun
    from enrichment_ai.cli.stack import Stack

    t0 = time.monotonic()
    print("Starting services, migrations, a Celery worker and beat …", flush=True)
    with Stack(settings) as stack:
        where = "embedded" if stack.services.embedded else "configured"
        print(f"  PostgreSQL + Redis ({where}); logs in {stack.worker.log_path.parent}", flush=True)
        sample = SampleRun(stack, out=lambda s: print(s, flush=True))
        try:
            n = sample.feed()
            print(f"Enqueued {n} sample messages (enrichment.analyze_message); analyses:\n", flush=True)
            pending = sample.wait_for_analyses(args.timeout)
            if pending:
                print(f"\n{pending} messages still unanalysed after {args.timeout:.0f}s; worker log: "
                      f"{stack.worker.log_path}")
                return 1
            days = sample.request_rollups()
            sample.show_results(days, timeout_s=120)
        finally:
            sample.close()
        print(f"\nDone in {time.monotonic() - t0:.0f}s; stopping worker, beat and services.", flush=True)
    return 0
