"""Per-worker-process resources, arq ``on_startup`` style.

A :class:`WorkerContext` holds what every task in one pool process shares: the
settings, the loaded models (:class:`~enrichment_ai.pipeline.Enricher`), one
PostgreSQL connection and one Redis client. It is built in each pool process after
fork (``worker_process_init``), never in the prefork parent, so no socket is shared;
with the ``solo`` pool it is built lazily on the first task. This module's ``_CONTEXT``
is the project's only global holding connections, by design: one per process.

Models before fork (:func:`preload`, ``Settings.load_before_fork``, CPU only): the
worker's main process loads the :class:`~enrichment_ai.pipeline.Enricher` once, before
Celery starts its pool, and every pool process — the first ones and each replacement
after a crash (OOM, a poison message's segfault) — inherits it by fork instead of
reading ~1 GB of models again (~10 s here, per process and per restart). The pages stay
shared copy-on-write between the pool processes (``gc.freeze`` keeps the collector from
touching the parent's objects). Not on CUDA: CUDA must not be initialised before fork,
so a GPU worker's processes load after fork as before. What makes the models safe to
fork: the parent loads with one torch thread and runs no forward pass (no OpenMP team
exists to be lost), lingua is called one text at a time (its parallel API's rayon pool
hangs after fork; analysis/language.py), the SentencePiece tokenizer holds no threads,
and the children set their own torch thread count.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init, worker_process_shutdown

from enrichment_ai.config import Settings

log = logging.getLogger("enrichment.worker")

_CONTEXT: WorkerContext | None = None

class WorkerContext:
    """Models and connections of one worker process. Connections are reopened after a
    transient failure (:meth:`reset`)."""

    def __init__(self, settings: Settings, enricher: Any = None) -> None:
        self.settings = settings
        self._enricher: Any = enricher
        self._summarizer: Any = None
        self._conn: Any = None
        self._redis: Any = None

    @property
    def enricher(self):
        """The loaded :class:`~enrichment_ai.pipeline.Enricher` (loaded on first use)."""
        if self._enricher is None:
            self._enricher = load_enricher(self.settings)
        return self._enricher

    @property
    def summarizer(self):
        """The configured conversation summarizer. It embeds through :meth:`embed`: in a
        background worker, which holds no models, the few window messages whose analysis
        stored no embedding are placed by their words instead."""
        if self._summarizer is None:
            from enrichment_ai import summaries

            self._summarizer = summaries.load_summarizer(self.settings, self)
        return self._summarizer

    def embed(self, texts):
        """The enricher's embeddings where this process holds the models (an analysis
        worker); None where it does not (a background worker), and the summarizer then
        places those messages by their words (``summarizers.word_vectors``). Loading the
        models here for them put ~1.4 GB and an encoder beside the analysis pool on the
        same cores: in a 40-minute soak (docs/metrics.md) the background worker grew
        78 → 1,450 MiB and analysis p95 went from 0.4 s to 3.1 s while it encoded."""
        if self._enricher is None:
            return None
        return self._enricher.embed(texts)

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


#: Logged by a worker's main process that loaded the models for its whole pool.
LOADED_FOR_POOL = "models loaded for the pool"


def load_enricher(settings: Settings, *, for_pool: bool = False):
    """A loaded :class:`~enrichment_ai.pipeline.Enricher`, its load time logged and observed."""
    from enrichment_ai.observability.metrics import observe_model
    from enrichment_ai.pipeline import Enricher

    enricher, t0 = Enricher(settings), time.perf_counter()
    enricher.load()
    observe_model(enricher.model_version, time.perf_counter() - t0)
    log.info("%s: %s", LOADED_FOR_POOL if for_pool else "models loaded", enricher.model_version,
             extra={"model_load_s": round(time.perf_counter() - t0, 3)})
    return enricher


def pool_has_models(worker_log: str, concurrency: int) -> bool:
    """From a worker's log: whether all its ``concurrency`` pool processes have models —
    loaded once for the pool before fork, or by each pool process after it."""
    return LOADED_FOR_POOL in worker_log or worker_log.count("models loaded") >= concurrency


#: The models the prefork parent loaded for its pool processes (:func:`preload`).
_PRELOADED: Any = None


def can_load_before_fork(settings: Settings, pool_cls: Any) -> bool:
    """Whether :func:`preload` applies: the setting, the prefork pool, and a CPU device —
    ``auto`` counts as CPU only on a torch built without CUDA (asking the driver whether
    a GPU is there would initialise CUDA in the parent)."""
    from celery.concurrency.prefork import TaskPool

    prefork = isinstance(pool_cls, type) and issubclass(pool_cls, TaskPool)
    if not settings.load_before_fork or not prefork or settings.device == "cuda":
        return False
    if settings.device == "cpu":
        return True
    import torch

    return torch.version.cuda is None and not getattr(torch.version, "hip", None)


def preload(settings: Settings) -> None:
    """Load the models in this (the prefork parent) process for the pool processes to
    inherit; see the module docstring. Call before the pool starts."""
    global _PRELOADED
    import gc

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # no OpenMP team in the parent: the children start their own
    try:
        _PRELOADED = load_enricher(settings.model_copy(update={"torch_threads": 0}), for_pool=True)
    finally:
        torch.set_num_threads(threads)
    gc.collect()
    gc.freeze()  # the collector leaves the parent's objects (and their pages) alone in the children


def _new_context(settings: Settings) -> WorkerContext:
    """A context with no connection of the parent's, holding the models the parent
    loaded for the pool (:func:`preload`) if it did — then this process's torch threads
    set as for models it had loaded itself."""
    ctx = WorkerContext(settings, enricher=_PRELOADED)
    if _PRELOADED is not None:
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
    return ctx


def get_context(settings: Settings) -> WorkerContext:
    """This process's context, created on first use."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = _new_context(settings)
    return _CONTEXT


def install(settings: Settings, *, preload_models: bool = True) -> None:
    """Hook the context to the worker's lifecycle (call once in a worker's main process):
    ``preload_models`` — load the models up front: in the main process before the pool
    forks where :func:`can_load_before_fork`, else in each pool process after fork."""

    def on_init(**_kw) -> None:
        global _CONTEXT
        _CONTEXT = _new_context(settings)  # fresh after fork: never share the parent's sockets
        if preload_models:
            _CONTEXT.enricher  # noqa: B018 - load now (unless inherited), not on the first batch

    def on_shutdown(**_kw) -> None:
        if _CONTEXT is not None:
            _CONTEXT.close()

    def after_setup(instance=None, **_kw) -> None:
        # the worker is configured (logging included) and its pool not yet forked
        if preload_models and _PRELOADED is None and can_load_before_fork(settings, getattr(instance, "pool_cls", None)):
            preload(settings)

    celeryd_after_setup.connect(after_setup, weak=False, dispatch_uid="enrichment.context.preload")
    worker_process_init.connect(on_init, weak=False, dispatch_uid="enrichment.context.init")
    worker_process_shutdown.connect(on_shutdown, weak=False, dispatch_uid="enrichment.context.shutdown")
