"""Conversation summaries: decide which channels are due, summarise a channel's window,
write one ``conversation_summaries`` row per window (docs/metrics.md).

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
from enrichment_ai.db import summary_sql
from enrichment_ai.summarizers import Summary, WindowMessage, build_summarizer

#: Most messages one summary covers: a larger backlog is summarised by its newest ones.
MAX_WINDOW_MESSAGES = 200


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
        min_quiet=settings.summary_min_quiet_messages,
        quiet_s=settings.summary_quiet_s,
        skip_bots=settings.skip_bots,
    )


def quiet_channels_due(conn: psycopg.Connection, settings: Settings, *, limit: int = 5000) -> list[UUID]:
    """For the periodic sweep: channels active within the last ``summary_quiet_s`` + 1 day
    whose window is due now (typically because they went quiet)."""
    recent = summary_sql.recent_channels(conn, settings.summary_quiet_s + 86400, limit)
    return channels_due(conn, recent, settings)


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
            conn, channel_id, skip_bots=settings.skip_bots, max_messages=MAX_WINDOW_MESSAGES
        )
        if not rows:
            return None
        theta = summary_sql.threshold(conn, channel_id, settings.toxicity_threshold)
        window = [
            WindowMessage(
                id=mid, author_id=author_id, author=author, text=content,
                toxic=tox is not None and float(tox) >= theta,
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
