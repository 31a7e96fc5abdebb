"""``celery -A workers.celery_app worker|beat``: the app built from the environment.

The only place that builds an app from ``Settings()`` at import — importing this module
*is* the request to configure one. ``ENRICHMENT_REDIS_URL`` (and, for the tasks,
``ENRICHMENT_DATABASE_URL``) must be set; ``enrichment-ai worker`` resolves them itself.
"""

from enrichment_ai import observability
from enrichment_ai.config import Settings

settings = Settings()
observability.setup_worker(settings, name=settings.queue)  # before the app imports metrics

from workers.app import create_app  # noqa: E402
from workers.context import install  # noqa: E402

app = create_app(settings)
install(settings)
observability.serve_metrics(settings)
