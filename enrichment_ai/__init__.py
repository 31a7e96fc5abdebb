"""enrichment-ai: background AI enrichment for chat messages.

The library knows nothing about Celery; ``workers/`` is the thin Celery layer.
"""

__version__ = "0.1.0"
