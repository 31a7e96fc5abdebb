"""``enrichment-ai run`` (``make run``): the product, live, until Ctrl-C.

Starts services (embedded PostgreSQL + Redis unless ``ENRICHMENT_*_URL`` are set),
applies migrations, starts a Celery worker and beat as subprocesses, feeds the built-in
sample conversation through ``send_task`` and shows analyses as they land, then the
alerts, summaries and rollups, and keeps following new analyses of the sample and new
alerts. Ctrl-C stops worker, beat and services in order.
"""

from __future__ import annotations

import argparse
import signal
import time

from enrichment_ai.config import Settings

HELP = "Start everything, feed sample messages and show analyses as they land (Ctrl-C stops)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-sample", action="store_true", help="start the stack without feeding the sample")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from enrichment_ai.cli.live import SampleRun
    from enrichment_ai.cli.stack import Stack
    from enrichment_ai.observability.redact import mask_url

    # Ctrl-C (even where a launcher started us with SIGINT ignored) and SIGTERM both
    # raise KeyboardInterrupt, which stops worker, beat and services in order.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print("Starting services, migrations, a Celery worker and beat … (Ctrl-C stops everything)", flush=True)
    stack = Stack(settings)
    try:
        stack.start()
        urls = stack.settings_with_urls()
        print(f"  database: {mask_url(urls.database_url)}\n  broker:   {mask_url(urls.redis_url)}\n"
              f"  logs:     {stack.worker.log_path.parent}", flush=True)
        sample = SampleRun(stack, out=lambda s: print(s, flush=True))
        try:
            if not args.no_sample:
                n = sample.feed()
                print(f"Enqueued {n} sample messages; analyses as they land:\n", flush=True)
                sample.wait_for_analyses(timeout_s=600)
                sample.show_results(sample.request_rollups(), timeout_s=120)
                print("\nFollowing new analyses of the sample (re-enqueue with `enrichment-ai enqueue`); "
                      "Ctrl-C to stop.", flush=True)
            seen_alerts = len(sample.alerts()) if sample.ids else 0
            while True:
                stack.check_alive()
                if sample.ids:
                    sample.show_new_analyses()
                    alerts = sample.alerts()
                    for line in alerts[seen_alerts:]:
                        print(f"ALERT {line}", flush=True)
                    seen_alerts = len(alerts)
                time.sleep(1)
        finally:
            sample.close()
    except KeyboardInterrupt:
        print("\nStopping worker, beat and services …", flush=True)
    finally:
        stack.stop()
    print("Stopped.", flush=True)
    return 0
