"""Worker logs: readable text (default) or one JSON object per line, never a credential.

``Settings.log_format = "json"`` gives lines like::

    {"ts": "...", "level": "INFO", "logger": "enrichment.process", "message": "batch …",
     "process": 123, "batch_id": "…", "events": 16, "analysed": 15, "skipped": 1,
     "alerts": 2, "timings_s": {"fetch": 0.003, …}, "task_ids": ["…"]}

Why Celery's ``after_setup_logger`` / ``after_setup_task_logger`` signals rather than
``worker_hijack_root_logger = False`` and our own ``dictConfig``: Celery configures the
worker's logging itself (root handler, level, stdout/stderr redirection into the log,
the task logger with task ids, the same setup in pool processes after fork). The signals
hand us the handlers it just installed; we only swap their formatter, so every Celery
behaviour stays and every record — Celery's, kombu's, ours — goes through one formatter.

Message content never reaches a log: the pipeline logs ids, counts and timings only, and
the formatter passes every string through :class:`~.redact.Redactor` (configured URLs'
passwords, any ``user:password@`` or ``password=``). JSON lines are redacted field by field
*before* they are serialised: on the finished line ``password=…`` would swallow the
closing quote (invalid JSON), and a password with a ``"`` or ``\\`` is escaped there, so it
no longer matches itself.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from enrichment_ai.config import Settings
from enrichment_ai.observability.redact import Redactor, passwords_in

#: Fields bound to the current batch (task ids), added to every JSON line logged meanwhile.
_BOUND: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("enrichment_log_fields", default={})
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


def _scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every string in it redacted (dict keys and values, list items); any
    other object as the ``str`` that ``json.dumps(default=str)`` would write, redacted."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_scrub(k, redact) if isinstance(k, str) else k: _scrub(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(v, redact) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, process, task id (Celery's
    current task, or the batch's bound ``task_ids``), and every ``extra`` field."""

    def format(self, record: logging.LogRecord, redact: Callable[[str], str] | None = None) -> str:
        """The record as one JSON line; ``redact`` applied to every string field first."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        task = _current_task()
        if task is not None:
            out["task_id"], out["task_name"] = task.request.id, task.name
        out.update(_BOUND.get())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        if redact is not None:
            out = _scrub(out, redact)
        return json.dumps(out, default=str, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """Wraps any formatter; a :class:`JsonFormatter` redacts each field before it serialises,
    any other's finished line goes through the :class:`Redactor`."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner, self.redactor = inner, redactor

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(self.inner, JsonFormatter):
            return self.inner.format(record, redact=self.redactor)
        return self.redactor(self.inner.format(record))


def formatter_for(settings: Settings, current: logging.Formatter | None = None) -> logging.Formatter:
    """The formatter ``settings`` ask for (``current`` kept for text), redacting."""
    inner = JsonFormatter() if settings.log_format == "json" else (current or logging.Formatter(
        "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"))
    if isinstance(inner, RedactingFormatter):
        inner = inner.inner
    return RedactingFormatter(inner, Redactor(passwords_in([settings.database_url, settings.redis_url])))


def install(settings: Settings) -> None:
    """Hook :func:`formatter_for` into Celery's logging setup (worker and beat)."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    def on_setup(logger=None, **_kw) -> None:
        for handler in (logger.handlers if logger is not None else []):
            handler.setFormatter(formatter_for(settings, handler.formatter))

    after_setup_logger.connect(on_setup, weak=False, dispatch_uid="enrichment.logs.root")
    after_setup_task_logger.connect(on_setup, weak=False, dispatch_uid="enrichment.logs.task")


def bind_batch(fn: Callable) -> Callable:
    """Decorator for a batch task ``run(self, events)``: its events' task ids are added to
    every JSON line logged while it runs (a batch is not a Celery-traced task, so
    Celery's current-task id is not set there)."""

    @functools.wraps(fn)
    def inner(self, events, *args, **kwargs):
        token = _BOUND.set({"task_ids": [e.task_id for e in events]})
        try:
            return fn(self, events, *args, **kwargs)
        finally:
            _BOUND.reset(token)

    return inner


def _current_task():
    try:
        from celery import current_task

        task = current_task._get_current_object()
    except Exception:  # noqa: BLE001 - no Celery context
        return None
    return task if task is not None and getattr(task.request, "id", None) else None
