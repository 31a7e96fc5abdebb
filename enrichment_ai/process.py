"""One micro-batch of ``analyze_message`` events, end to end, without Celery.

:func:`analyze_batch` is what a worker runs for each batch (``workers/tasks.py`` only
decodes the events and handles acks/retries around it):

1. decode the ids — a malformed one is recorded in ``rejected_events``
   (``malformed_id``), never an error;
2. ONE ``fetch_messages`` for the batch — unknown ids (``not_found``) and deleted
   messages (``deleted``) become recorded skips — and ONE ``analysis_state`` probe:
   a message that already has a row for this model version is a redelivery, acked
   without recomputing (counted in ``already``; ``recompute`` ids — an explicit re-score
   or backfill — are analysed anyway), and one quarantined earlier (a ``worker_lost``
   skip) is not analysed again;
3. ONE ``Enricher.enrich_batch`` call for the remaining texts (empty, emoji-only …
   texts are the enricher's to judge: it returns a skipped :class:`Analysis` with a
   reason, which is stored like any other row);
4. ONE transaction: bulk ``upsert_analyses`` + ``record_skips`` + the message
   embeddings of the encoder pass (``message_embeddings``, read by summaries);
5. after the commit: moderation alerts — also for redelivered messages whose rows were
   committed by a run that failed before its alerts went out (:func:`_stored_rows`)
   — and the channels now due a summary that have none pending (``summaries.claim_due``:
   at most one pending summary per channel).

Every analysis row records the batch it came from in ``details["batch"]``
(``{"id", "size"}``), an honest trace of how events were grouped.
"""

from __future__ import annotations

import logging
import time
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
NOT_FOUND = "not_found"  # = store.SKIP_MISSING: due again for the sweeper once the message exists
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
    #: redelivered events whose message already had a row for this version (not recomputed)
    already: list[UUID] = field(default_factory=list)
    #: seconds per stage (fetch, analyse, write, alerts, summaries_due, total)
    timings: dict[str, float] = field(default_factory=dict)
    committed_at: float | None = None  # unix time of the commit

    def log_fields(self) -> dict[str, Any]:
        """Ids, counts and timings for a structured log line (never message content)."""
        return {"batch_id": self.batch_id, "events": self.size, "analysed": len(self.analysed),
                "skipped": len(self.skipped), "alerts": self.alerts,
                "due_channels": len(self.due_channels),
                "timings_s": {k: round(v, 4) for k, v in self.timings.items()}}

    def summary(self) -> str:
        """One log line."""
        return (f"batch {self.batch_id}: {self.size} events, {len(self.analysed)} analysed, "
                f"{len(self.skipped)} skipped, {len(self.already)} already analysed, {self.alerts} alerts, "
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
                  redis=None, quarantined: Iterable[Any] = (),
                  recompute: Iterable[Any] = ()) -> BatchOutcome:
    """Analyse one batch of message ids into ``ai_analysis`` (see module docstring).

    ``quarantined`` ids (also in ``raw_ids``) are not analysed: they are recorded as
    :data:`WORKER_LOST` skips (they repeatedly killed the process analysing them).
    ``recompute`` ids are analysed even if a row (or a ``worker_lost`` skip) exists for
    this model version; any other id with one is not recomputed.

    Raises only for infrastructure failures (DB/Redis), which the caller retries;
    nothing here depends on Celery.
    """
    from enrichment_ai.db import store
    from enrichment_ai.observability.metrics import Stopwatch

    clock = Stopwatch()
    outcome = BatchOutcome(batch_id=uuid.uuid4().hex[:12], size=len(raw_ids))
    ids, bad = decode_ids(raw_ids)
    outcome.skipped.extend(bad)
    for raw, _ in bad:
        log.warning("skip %s: malformed message id", raw)

    poison = set(decode_ids(quarantined)[0])
    forced = set(decode_ids(recompute)[0])
    messages = store.fetch_messages(conn, ids) if ids else {}
    state = store.analysis_state(conn, [i for i in ids if i not in forced and i not in poison],
                                 enricher.model_version) if ids else {}
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
        elif state.get(mid) == store.ANALYSED:
            outcome.already.append(mid)
        elif state.get(mid) == WORKER_LOST:
            skips.append((mid, WORKER_LOST))  # quarantined before: bumps its attempts
        else:
            live.append(msg)
    outcome.timings["fetch"] = clock.lap()

    hints = [language_hint(m) for m in live]
    strict = [m.validated_only for m in live]
    analyses: list[Analysis] = (
        enricher.enrich_batch([m.content or "" for m in live], hints, strict if any(strict) else None) if live else []
    )
    if len(analyses) != len(live):  # the enricher's contract; a bug if broken
        raise RuntimeError(f"enrich_batch returned {len(analyses)} results for {len(live)} texts")
    for analysis in analyses:
        analysis.details["batch"] = {"id": outcome.batch_id, "size": len(live)}
    rows = list(zip(live, analyses, strict=True))
    outcome.timings["analyse"] = clock.lap()

    with conn.transaction():
        if rows:
            store.upsert_analyses(conn, rows)
            _store_embeddings(conn, enricher, rows)
        if skips:
            store.record_skips(conn, skips, enricher.model_version)
        if bad:
            store.record_rejected(conn, ANALYZE_TASK, bad)
    outcome.timings["write"], outcome.committed_at = clock.lap(), time.time()
    outcome.analysed = rows
    outcome.skipped.extend((str(mid), reason) for mid, reason in skips)

    if rows or outcome.already:
        redelivered = (_stored_rows(conn, [messages[m] for m in outcome.already], enricher.model_version)
                       if outcome.already and redis is not None else [])
        outcome.alerts = _publish_alerts(conn, redis, rows + redelivered, settings)
        outcome.timings["alerts"] = clock.lap()
    if rows:
        outcome.due_channels = _channels_due(conn, redis, {m.channel_id for m in live}, settings)
        outcome.timings["summaries_due"] = clock.lap()
    outcome.timings["total"] = clock.total()
    log.info(outcome.summary(), extra=outcome.log_fields())
    return outcome


def _publish_alerts(conn, redis, rows, settings: Settings) -> int:
    """Moderation alerts for the committed rows (``enrichment_ai.alerts``)."""
    from enrichment_ai import alerts

    if redis is None:
        return 0
    return int(alerts.publish(redis, conn, rows, settings) or 0)


#: How recent a stored row must be for a redelivery to publish its alert (below the alert
#: dedup keys' 30-day TTL, so a published alert's key is still there to stop a second).
REPUBLISH_WITHIN_S = 24 * 3600


def _stored_rows(conn, redelivered: list[Message], model_version: str) -> list[tuple[Message, Analysis]]:
    """Redelivered messages with their committed rows, for their alerts.

    A batch can commit its rows and then fail before its alerts are out (Redis dropped,
    the process killed): its redelivery finds the rows, rightly does not recompute them —
    and so never published their alerts; a moderator never heard of the message. The
    alert is published from the stored row instead. Once only: the dedup key
    (``alerts.DEDUP_KEY``) of an alert that did go out stops a second. Rows written more
    than :data:`REPUBLISH_WITHIN_S` ago are left alone: a message re-enqueued weeks later
    is history, not news for a moderator."""
    from enrichment_ai.db import store

    stored = store.stored_analyses(conn, [m.id for m in redelivered], model_version,
                                   written_within_s=REPUBLISH_WITHIN_S)
    return [(m, stored[m.id]) for m in redelivered if m.id in stored]


def _store_embeddings(conn, enricher, rows) -> None:
    """The encoder pass's message vectors, for the summaries (``db.embedding_sql``)."""
    from enrichment_ai.db import embedding_sql

    vectors = [(msg.id, an.embedding_model or enricher.embedding_model, an.embedding)
               for msg, an in rows if an.embedding is not None]
    if vectors:
        embedding_sql.upsert(conn, vectors)


def _channels_due(conn, redis, channel_ids: set[UUID], settings: Settings) -> list[UUID]:
    """Channels due a summary with none pending, now marked pending (``summaries.claim_due``)."""
    from enrichment_ai import summaries

    return list(summaries.claim_due(conn, redis, sorted(channel_ids, key=str), settings))
