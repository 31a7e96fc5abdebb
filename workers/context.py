"""Per-worker-process resources, arq ``on_startup`` style.

A :class:`WorkerContext` holds what every task in one pool process shares: the
settings, the loaded models (:class:`~enrichment_ai.pipeline.Enricher`), one
PostgreSQL connection and one Redis client. It is built in each pool process after
fork (``worker_process_init``), never in the prefork parent, so CUDA is only ever
initialised in the process that uses it; with the ``solo`` pool it is built lazily on
the first task. This module's ``_CONTEXT`` is the project's only global holding
connections, by design: one per process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from enrichment_ai.config import Settings

log = logging.getLogger("enrichment.worker")

_CONTEXT: WorkerContext | None = None

#: Redis key an analysis worker's pool process writes its model version to after loading.
MODEL_VERSION_KEY = "enrichment:model-version:{queue}"


class WorkerContext:
    """Models and connections of one worker process. Connections are reopened after a
    transient failure (:meth:`reset`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._enricher: Any = None
        self._summarizer: Any = None
        self._conn: Any = None
        self._redis: Any = None

    @property
    def enricher(self):
        """The loaded :class:`~enrichment_ai.pipeline.Enricher` (loaded on first use)."""
        if self._enricher is None:
            from enrichment_ai.pipeline import Enricher

            from enrichment_ai.observability.metrics import observe_model

            enricher, t0 = Enricher(self.settings), time.perf_counter()
            enricher.load()
            observe_model(enricher.model_version, time.perf_counter() - t0)
            log.info("models loaded: %s", enricher.model_version,
                     extra={"model_load_s": round(time.perf_counter() - t0, 3)})
            self._enricher = enricher
            try:  # what the background worker's sweep compares against (analysis_model_version)
                self.redis.set(MODEL_VERSION_KEY.format(queue=self.settings.queue), enricher.model_version)
            except Exception as exc:  # noqa: BLE001 - the sweep then loads the models itself
                log.warning("could not publish the model version: %r", exc)
        return self._enricher

    def analysis_model_version(self) -> str:
        """The model version the analysis workers of ``Settings.queue`` run, as they
        published it at load; only when none has, this process loads the models to know.
        (A background worker sweeps for the analysis workers' version without holding
        their 1 GB of models.)"""
        if self._enricher is None:
            try:
                got = self.redis.get(MODEL_VERSION_KEY.format(queue=self.settings.queue))
            except Exception:  # noqa: BLE001 - fall back to loading
                got = None
            if got:
                return got.decode() if isinstance(got, bytes) else str(got)
        return self.enricher.model_version

    @property
    def summarizer(self):
        """The configured conversation summarizer. It embeds through :meth:`embed`, so a
        background worker loads the encoder only for a window with messages whose
        analysis stored no embedding."""
        if self._summarizer is None:
            from enrichment_ai import summaries

            self._summarizer = summaries.load_summarizer(self.settings, self)
        return self._summarizer

    def embed(self, texts):
        """The enricher's embeddings (loads the models on first use)."""
        return self.enricher.embed(texts)

    @property
    def conn(self):
        """An open autocommit PostgreSQL connection (reconnects if it was lost)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            from enrichment_ai import db

            # Named for pg_stat_activity: operators (and tests) can tell worker sessions apart.
            self._conn = db.connect(self.settings.database_url,
                                    application_name=f"enrichment-worker:{self.settings.queue}")
        return self._conn

    @property
    def redis(self):
        """A redis-py client for alerts (same server as the broker)."""
        if self._redis is None:
            from enrichment_ai.embedded import redis_client

            self._redis = redis_client(self.settings.redis_url)
        return self._redis

    def reset(self) -> None:
        """Drop the connections (after a transient error); models stay loaded."""
        for attr in ("_conn", "_redis"):
            obj = getattr(self, attr)
            setattr(self, attr, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # already broken
                    pass

    def close(self) -> None:
        """Release everything (process shutdown)."""
        self.reset()
        self._enricher = self._summarizer = None


def get_context(settings: Settings) -> WorkerContext:
    """This process's context, created on first use."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = WorkerContext(settings)
    return _CONTEXT


def install(settings: Settings, *, preload_models: bool = True) -> None:
    """Hook the context to the pool-process lifecycle (call once in a worker process)."""

    def on_init(**_kw) -> None:
        global _CONTEXT
        _CONTEXT = WorkerContext(settings)  # fresh after fork: never share the parent's sockets
        if preload_models:
            _CONTEXT.enricher  # noqa: B018 - load now, not on the first batch

    def on_shutdown(**_kw) -> None:
        if _CONTEXT is not None:
            _CONTEXT.close()

    worker_process_init.connect(on_init, weak=False, dispatch_uid="enrichment.context.init")
    worker_process_shutdown.connect(on_shutdown, weak=False, dispatch_uid="enrichment.context.shutdown")
