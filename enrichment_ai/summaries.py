"""Conversation summaries: decide which channels are due, summarise a channel's window,
write one ``conversation_summaries`` row per window (docs/metrics.md).

When a window is due: ≥ ``summary_min_messages`` new messages spanning at least
``summary_min_interval_s`` (a recap per half hour of conversation, however busy the
channel), or quiet for ``summary_quiet_s`` after ≥ ``summary_min_quiet_messages``.

At most one pending summary per channel: :func:`claim_due` sets a Redis marker
(``SET NX`` with a TTL) for each channel it returns, so a flooded channel gets one
``summarize_channel`` task however many batches see it; the task calls :func:`release` after
its commit. A lost task's marker expires after :data:`PENDING_TTL_S`. A channel a batch
found not due is not checked again by batches for :func:`recheck_s` (60 s by default).

Summaries read each message's embedding stored by its analysis pass
(``message_embeddings``); the encoder runs only for key-point candidates without one, and
only in a process that holds it — a background worker places them by their words
(``summarizers.word_vectors``) rather than load the models beside the analysis pool. With English
routed to the English artifact (analysis/routed.py) a window's vectors come from two
spaces; the summarizer compares messages within a space only.

Idempotent: a per-channel advisory lock serialises overlapping triggers, the window is
recomputed under it (the second trigger finds nothing new), and
``UNIQUE (channel_id, end_message_id)`` makes a repeated window a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg

from enrichment_ai.config import Settings
from enrichment_ai.db import embedding_sql, summary_sql
from enrichment_ai.summarizers import Summary, WindowMessage, build_summarizer

#: A pending-summary marker outlives a lost task by at most this long.
PENDING_TTL_S = 3600

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What summaries need from :class:`enrichment_ai.pipeline.Enricher`."""

    def embed(self, texts: Sequence[str]) -> Any:
        """One vector per text, or None where this process holds no encoder."""


class Summarizer(Protocol):
    def summarize(self, window: Sequence[WindowMessage]) -> Summary: ...


def channels_due(conn: psycopg.Connection, channel_ids: Sequence[UUID], settings: Settings) -> list[UUID]:
    """Channels among ``channel_ids`` with ≥ ``summary_min_messages`` new analysed
    messages, or quiet for ``summary_quiet_s`` after ≥ ``summary_min_quiet_messages``."""
    return summary_sql.channels_due(
        conn,
        list(dict.fromkeys(channel_ids)),
        min_messages=settings.summary_min_messages,
        min_interval_s=settings.summary_min_interval_s,
        min_quiet=settings.summary_min_quiet_messages,
        quiet_s=settings.summary_quiet_s,
        skip_bots=settings.skip_bots,
    )


def pending_key(channel_id: UUID) -> str:
    """The Redis key marking a channel's summary as enqueued and not yet written."""
    return f"enrichment:summary-pending:{channel_id}"


def checked_key(channel_id: UUID) -> str:
    """The Redis key saying the channel was found not due a moment ago (:func:`claim_due`)."""
    return f"enrichment:summary-checked:{channel_id}"


def recheck_s(settings: Settings) -> int:
    """How long a batch's "not due" answer for a channel stands: 1/30 of the interval a
    busy channel's window must span (60 s for the default half hour; 0 — check every
    batch — with no interval). A summary starts at most that much after its window
    became due: 2 % of the recap period, where checking on every batch cost a query per
    batch (~9 ms on fresh planner statistics; 15 % of the pool process's time in a
    backlog on a table that had just grown, py-spy) for an answer that changes twice an
    hour."""
    return max(0, settings.summary_min_interval_s // 30)


def claim_due(conn: psycopg.Connection, redis, channel_ids: Sequence[UUID], settings: Settings,
              *, recheck: bool = True) -> list[UUID]:
    """The channels of ``channel_ids`` that are due and had no summary pending; each one
    returned is now marked pending — the caller enqueues exactly one summary for it.

    Channels already pending are not even checked (no SQL for a flooded channel), nor,
    with ``recheck`` (the analysis batches), channels found not due within the last
    :func:`recheck_s` seconds: those are marked checked for that long. The quiet sweep
    passes ``recheck=False``: it checks every channel it is given, whatever a batch saw.
    Without Redis (``redis=None``) it is :func:`channels_due`.
    """
    ids = list(dict.fromkeys(channel_ids))
    if redis is None or not ids:
        return channels_due(conn, ids, settings)
    ttl = recheck_s(settings) if recheck else 0
    keys = [pending_key(cid) for cid in ids] + ([checked_key(cid) for cid in ids] if ttl else [])
    seen = redis.mget(keys)
    n = len(ids)
    ids = [cid for i, cid in enumerate(ids) if seen[i] is None and (not ttl or seen[n + i] is None)]
    if not ids:
        return []
    due = channels_due(conn, ids, settings)
    pipe = redis.pipeline(transaction=False)
    if ttl:
        for cid in set(ids) - set(due):
            pipe.set(checked_key(cid), "1", ex=ttl)
    for cid in due:
        pipe.set(pending_key(cid), "1", nx=True, ex=PENDING_TTL_S)
    results = pipe.execute()
    won = results[len(results) - len(due):]
    return [cid for cid, w in zip(due, won, strict=True) if w]


def release(redis, channel_id: UUID) -> None:
    """Clear the channel's pending marker (its summary task has finished)."""
    if redis is not None:
        redis.delete(pending_key(channel_id))


def quiet_channels_due(conn: psycopg.Connection, settings: Settings, *, limit: int = 5000,
                       redis=None) -> list[UUID]:
    """For the periodic sweep: channels active within the last ``summary_quiet_s`` + 1 day
    whose window is due now (typically because they went quiet); with ``redis``, only
    those with no summary pending, now marked pending (:func:`claim_due`)."""
    recent = summary_sql.recent_channels(conn, settings.summary_quiet_s + 86400, limit)
    return claim_due(conn, redis, recent, settings, recheck=False)


def _embedding_ids(settings: Settings) -> tuple[str, ...]:
    """The spaces stored vectors may be in; the first is the one ``enricher.embed`` uses."""
    from enrichment_ai.analysis.routed import embedding_ids

    return embedding_ids(settings)


def load_summarizer(settings: Settings, enricher: Embedder) -> Summarizer:
    """The configured summarizer (``Settings.summarizer``), loaded. Workers build it
    once per process and pass it to :func:`summarize_channel`."""
    return build_summarizer(settings.summarizer, enricher.embed).load()


def summarize_channel(
    conn: psycopg.Connection,
    channel_id: UUID,
    enricher: Embedder,
    settings: Settings,
    *,
    summarizer: Summarizer | None = None,
    force: bool = False,
) -> UUID | None:
    """Summarise the channel's current window if it is due (or ``force``, with at least
    one message); returns the new row's id, or None when nothing was written."""
    with conn.transaction():
        summary_sql.lock_channel(conn, channel_id)
        if not force and not channels_due(conn, [channel_id], settings):
            return None
        rows = summary_sql.window(
            conn, channel_id, skip_bots=settings.skip_bots, max_messages=settings.summary_max_messages,
            hold_s=2 * settings.sweep_grace_s,  # older without a row: lost; the sweeper re-sends it
        )
        if not rows:
            return None
        theta = summary_sql.threshold(conn, channel_id, settings.toxicity_threshold)
        spaces = _embedding_ids(settings)
        stored = embedding_sql.read(conn, spaces, [r[0] for r in rows])
        # a message without a stored vector is embedded by enricher.embed: the first space
        window = [
            WindowMessage(
                id=mid, author_id=author_id, author=author, text=content,
                toxic=tox is not None and float(tox) >= theta,
                embedding=stored[mid][1] if mid in stored else None,
                space=stored[mid][0] if mid in stored else spaces[0],
            )
            for mid, _created, author_id, author, content, tox in rows
        ]
        missing = sum(1 for m in window if m.embedding is None)
        # those of them the summarizer picks key points from (4+ content words) are embedded by
        # the encoder where this process holds one, else placed by their words
        if missing:
            log.info("summary of channel %s: %d of %d window messages have no stored vector (spaces %s)",
                     channel_id, missing, len(window), ", ".join(spaces))
        summ = summarizer or load_summarizer(settings, enricher)
        result = summ.summarize(window)
        return summary_sql.insert(conn, {
            "channel": channel_id,
            "start_id": rows[0][0],
            "end_id": rows[-1][0],
            "start_at": rows[0][1],
            "end_at": rows[-1][1],
            "summary": result.summary,
            "key_points": result.key_points,
            "key_ids": result.key_point_message_ids,
            "participants": result.participants,
            "count": result.message_count,
            "summarizer": result.model,
        })
