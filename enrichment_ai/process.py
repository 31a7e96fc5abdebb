"""One micro-batch of ``analyze_message`` events, end to end, without Celery.

:func:`analyze_batch` is what a worker runs for each batch (``workers/tasks.py`` only
decodes the events and handles acks/retries around it):

1. decode the ids — a malformed one is recorded in ``rejected_events``
   (``malformed_id``), never an error;
2. ONE ``fetch_messages`` for the batch — unknown ids (``not_found``) and deleted
   messages (``deleted``) become recorded skips;
3. ONE ``Enricher.enrich_batch`` call for the remaining texts (empty, emoji-only …
   texts are the enricher's to judge: it returns a skipped :class:`Analysis` with a
   reason, which is stored like any other row);
4. ONE transaction: bulk ``upsert_analyses`` + ``record_skips``;
5. after the commit: moderation alerts, and the channels now due a summary.

Every analysis row records the batch it came from in ``details["batch"]``
(``{"id", "size"}``), an honest trace of how events were grouped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from enrichment_ai.analysis.language_prior import language_hint
from enrichment_ai.config import Settings
from enrichment_ai.types import Analysis, Message

log = logging.getLogger("enrichment.process")

#: ``rejected_events.task`` of analyze events with a malformed id
ANALYZE_TASK = "enrichment.analyze_message"
#: Skip reasons recorded by this module (the enricher adds its own, e.g. ``empty``).
MALFORMED_ID = "malformed_id"
NOT_FOUND = "not_found"
DELETED = "deleted"
#: the message killed the worker process analysing it, repeatedly (workers.batching)
WORKER_LOST = "worker_lost"


@dataclass
class BatchOutcome:
    """What one batch did; ``due_channels`` are for the caller to enqueue."""

    batch_id: str
    size: int
    analysed: list[tuple[Message, Analysis]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (raw id, reason)
    alerts: int = 0
    due_channels: list[UUID] = field(default_factory=list)

    def summary(self) -> str:
        """One log line."""
        return (f"batch {self.batch_id}: {self.size} events, {len(self.analysed)} analysed, "
                f"{len(self.skipped)} skipped, {self.alerts} alerts, "
                f"{len(self.due_channels)} channels due a summary")


def decode_ids(raw_ids: Iterable[Any]) -> tuple[list[UUID], list[tuple[str, str]]]:
    """Valid ids (deduplicated, in order) and ``(raw, "malformed_id")`` for the rest."""
    ids: list[UUID] = []
    seen: set[UUID] = set()
    bad: list[tuple[str, str]] = []
    for raw in raw_ids:
        try:
            mid = raw if isinstance(raw, UUID) else UUID(str(raw))
        except (TypeError, ValueError, AttributeError):
            bad.append((repr(raw)[:100], MALFORMED_ID))
            continue
        if mid not in seen:
            seen.add(mid)
            ids.append(mid)
    return ids, bad


def analyze_batch(conn, enricher, raw_ids: Sequence[Any], settings: Settings, *,
                  redis=None, quarantined: Iterable[Any] = ()) -> BatchOutcome:
    """Analyse one batch of message ids into ``ai_analysis`` (see module docstring).

    ``quarantined`` ids (also in ``raw_ids``) are not analysed: they are recorded as
    :data:`WORKER_LOST` skips (they repeatedly killed the process analysing them).

    Raises only for infrastructure failures (DB/Redis), which the caller retries;
    nothing here depends on Celery.
    """
    from enrichment_ai.db import store

    outcome = BatchOutcome(batch_id=uuid.uuid4().hex[:12], size=len(raw_ids))
    ids, bad = decode_ids(raw_ids)
    outcome.skipped.extend(bad)
    for raw, _ in bad:
        log.warning("skip %s: malformed message id", raw)

    poison = set(decode_ids(quarantined)[0])
    messages = store.fetch_messages(conn, ids) if ids else {}
    skips: list[tuple[UUID, str]] = []
    live: list[Message] = []
    for mid in ids:
        msg = messages.get(mid)
        if mid in poison:
            skips.append((mid, WORKER_LOST))
        elif msg is None:
            skips.append((mid, NOT_FOUND))
        elif msg.deleted:
            skips.append((mid, DELETED))
        else:
            live.append(msg)

    hints = [language_hint(m) for m in live]
    analyses: list[Analysis] = enricher.enrich_batch([m.content or "" for m in live], hints) if live else []
    if len(analyses) != len(live):  # the enricher's contract; a bug if broken
        raise RuntimeError(f"enrich_batch returned {len(analyses)} results for {len(live)} texts")
    for analysis in analyses:
        analysis.details["batch"] = {"id": outcome.batch_id, "size": len(live)}
    rows = list(zip(live, analyses, strict=True))

    with conn.transaction():
        if rows:
            store.upsert_analyses(conn, rows)
        if skips:
            store.record_skips(conn, skips, enricher.model_version)
        if bad:
            store.record_rejected(conn, ANALYZE_TASK, bad)
    outcome.analysed = rows
    outcome.skipped.extend((str(mid), reason) for mid, reason in skips)

    if rows:
        outcome.alerts = _publish_alerts(conn, redis, rows, settings)
        outcome.due_channels = _channels_due(conn, {m.channel_id for m in live}, settings)
    log.info(outcome.summary())
    return outcome


def _publish_alerts(conn, redis, rows, settings: Settings) -> int:
    """Moderation alerts for the committed rows (``enrichment_ai.alerts``)."""
    from enrichment_ai import alerts

    if redis is None:
        return 0
    return int(alerts.publish(redis, conn, rows, settings) or 0)


def _channels_due(conn, channel_ids: set[UUID], settings: Settings) -> list[UUID]:
    """Channels with enough new analysed messages for a summary (``enrichment_ai.summaries``)."""
    from enrichment_ai import summaries

    return list(summaries.channels_due(conn, sorted(channel_ids, key=str), settings))
