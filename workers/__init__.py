"""The Celery side of enrichment-ai: app factory (``app``), tasks, batching, per-process context.

Importing this package configures nothing; ``workers.celery_app`` builds the app from
the environment for ``celery -A workers.celery_app``.
"""
