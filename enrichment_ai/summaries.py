"""Conversation summaries: decide which channels are due, summarise a channel's window,
write one ``conversation_summaries`` row per window (docs/metrics.md).

When a window is due: ≥ ``summary_min_messages`` new messages spanning at least
``summary_min_interval_s`` (a recap per half hour of conversation, however busy the
channel), or quiet for ``summary_quiet_s`` after ≥ ``summary_min_quiet_messages``.

At most one pending summary per channel: :func:`claim_due` sets a Redis marker
(``SET NX`` with a TTL) for each channel it returns, so a flooded channel gets one
``summarize_channel`` task however many batches see it; the task calls :func:`release` after
its commit. A lost task's marker expires after :data:`PENDING_TTL_S`.

Summaries read each message's embedding stored by its analysis pass
(``message_embeddings``); the encoder runs only for messages without one. With English
routed to the English artifact (analysis/routed.py) a window's vectors come from two
spaces; the summarizer compares messages within a space only.

Idempotent: a per-channel advisory lock serialises overlapping triggers, the window is
recomputed under it (the second trigger finds nothing new), and
``UNIQUE (channel_id, end_message_id)`` makes a repeated window a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg

from enrichment_ai.config import Settings
from enrichment_ai.db import embedding_sql, summary_sql
from enrichment_ai.summarizers import Summary, WindowMessage, build_summarizer

#: A pending-summary marker outlives a lost task by at most this long.
PENDING_TTL_S = 3600


class Embedder(Protocol):
    """What summaries need from :class:`enrichment_ai.pipeline.Enricher`."""

    def embed(self, texts: Sequence[str]) -> Any: ...


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


def claim_due(conn: psycopg.Connection, redis, channel_ids: Sequence[UUID], settings: Settings) -> list[UUID]:
    """The channels of ``channel_ids`` that are due and had no summary pending; each one
    returned is now marked pending — the caller enqueues exactly one summary for it.

    Channels already pending are not even checked (no SQL for a flooded channel).
    Without Redis (``redis=None``) it is :func:`channels_due`.
    """
    ids = list(dict.fromkeys(channel_ids))
    if redis is None or not ids:
        return channels_due(conn, ids, settings)
    pipe = redis.pipeline(transaction=False)
    for cid in ids:
        pipe.exists(pending_key(cid))
    ids = [cid for cid, pending in zip(ids, pipe.execute(), strict=True) if not pending]
    due = channels_due(conn, ids, settings)
    if not due:
        return []
    pipe = redis.pipeline(transaction=False)
    for cid in due:
        pipe.set(pending_key(cid), "1", nx=True, ex=PENDING_TTL_S)
    return [cid for cid, won in zip(due, pipe.execute(), strict=True) if won]


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
    return claim_due(conn, redis, recent, settings)


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
            conn, channel_id, skip_bots=settings.skip_bots, max_messages=settings.summary_max_messages
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
