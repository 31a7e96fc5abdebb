"""Every SQL statement of the analysis path, parameterised and batch-shaped.

Each function runs inside ``conn.transaction()``: on an autocommit connection that is
its own transaction; inside a caller's transaction it becomes a savepoint, so a
caller may group several calls atomically. Writes are idempotent (ON CONFLICT), so
at-least-once delivery never duplicates a row. Contract details: docs/schema.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from enrichment_ai.types import Analysis, Message

#: analysis_skips.reason for an id that is not in ``messages`` (yet), as the worker
#: records it. The sweeper does not treat such a skip as final: if the message appears
#: later (its event was sent before its transaction committed) it is returned.
SKIP_MISSING = "not_found"
#: analysis_skips.reason for a message whose ``deleted_at`` is set.
SKIP_DELETED = "deleted"
#: analysis_skips.reason for a message that killed the process analysing it (quarantined).
SKIP_WORKER_LOST = "worker_lost"
#: :func:`analysis_state` value: a row exists for the model version.
ANALYSED = "analysed"

__all__ = [
    "SKIP_DELETED",
    "SKIP_MISSING",
    "analysis_state",
    "fetch_messages",
    "messages_missing_analysis",
    "record_rejected",
    "record_skips",
    "upsert_analyses",
]

#: How many of a channel's latest messages give its "recent languages" (the language-id
#: prior): a bounded index scan per channel of the batch, whatever the backlog.
RECENT_LANGUAGE_MESSAGES = 50

_FETCH_SQL = """
WITH wanted AS (
    SELECT m.id, m.channel_id, c.server_id, m.author_id, m.content, m.created_at,
           m.deleted_at IS NOT NULL AS deleted, COALESCE(u.bot, FALSE) AS author_bot,
           s.preferred_locale, u.locale, COALESCE(es.validated_languages_only, FALSE) AS validated_only
    FROM messages m
    JOIN channels c ON c.id = m.channel_id
    LEFT JOIN servers s ON s.id = c.server_id
    LEFT JOIN server_enrichment_settings es ON es.server_id = c.server_id
    LEFT JOIN users u ON u.id = m.author_id
    WHERE m.id = ANY(%(ids)s)
), recent AS (
    SELECT ch.channel_id, array_agg(a.language_code ORDER BY last.created_at DESC) AS langs
    FROM (SELECT DISTINCT channel_id FROM wanted) ch
    CROSS JOIN LATERAL (
        SELECT m.id, m.created_at FROM messages m
        WHERE m.channel_id = ch.channel_id AND m.deleted_at IS NULL
        ORDER BY m.created_at DESC LIMIT %(recent)s
    ) last
    JOIN ai_analysis a ON a.message_id = last.id
    WHERE a.language_code IS NOT NULL AND a.language_code <> 'und'
    GROUP BY ch.channel_id
)
SELECT w.id, w.channel_id, w.server_id, w.author_id, w.content, w.created_at, w.deleted,
       w.author_bot, w.preferred_locale, w.locale, COALESCE(r.langs, '{}'), w.validated_only
FROM wanted w LEFT JOIN recent r ON r.channel_id = w.channel_id
"""


def fetch_messages(conn: psycopg.Connection, ids: Iterable[UUID]) -> dict[UUID, Message]:
    """Load the given messages with ONE select. Ids that do not exist are absent from
    the result; deleted messages are present with ``deleted=True`` (the caller
    decides, typically recording :data:`SKIP_DELETED`). Each message carries what the
    language-id prior uses: the server's ``preferred_locale``, the author's ``locale``
    and the languages of its channel's last :data:`RECENT_LANGUAGE_MESSAGES` analysed
    messages (newest first); and its server's ``validated_languages_only``."""
    wanted = list(dict.fromkeys(_uuid(i) for i in ids))
    if not wanted:
        return {}
    with conn.transaction():
        rows = conn.execute(_FETCH_SQL, {"ids": wanted, "recent": RECENT_LANGUAGE_MESSAGES}).fetchall()
    return {
        r[0]: Message(
            id=r[0], channel_id=r[1], server_id=r[2], author_id=r[3], content=r[4],
            created_at=r[5], deleted=r[6], author_bot=r[7], server_locale=r[8],
            author_locale=r[9], channel_languages=tuple(r[10]), validated_only=r[11],
        )
        for r in rows
    }


_UPSERT_SQL = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(
        message_id uuid, message_created_at timestamptz, sentiment_score numeric,
        toxicity_score numeric, language_code text, topics text[], entities jsonb,
        confidence_score numeric, model_version text, sentiment_label text,
        language_confidence real, scores jsonb, details jsonb, skip_reason text)
), ins AS (
    INSERT INTO ai_analysis AS a (
        message_id, message_created_at, sentiment_score, toxicity_score, language_code,
        topics, entities, confidence_score, model_version, sentiment_label,
        language_confidence, scores, details, skip_reason)
    SELECT r.message_id, r.message_created_at, round(r.sentiment_score, 2),
           round(r.toxicity_score, 2), left(r.language_code, 10), r.topics, r.entities,
           round(r.confidence_score, 2), r.model_version, r.sentiment_label,
           r.language_confidence, r.scores, r.details, r.skip_reason
    FROM r
    JOIN messages m ON m.id = r.message_id AND m.created_at = r.message_created_at
    ON CONFLICT (message_id, model_version) DO UPDATE SET
        sentiment_score = EXCLUDED.sentiment_score,
        toxicity_score = EXCLUDED.toxicity_score,
        language_code = EXCLUDED.language_code,
        topics = EXCLUDED.topics,
        entities = EXCLUDED.entities,
        confidence_score = EXCLUDED.confidence_score,
        sentiment_label = EXCLUDED.sentiment_label,
        language_confidence = EXCLUDED.language_confidence,
        scores = EXCLUDED.scores,
        details = EXCLUDED.details,
        skip_reason = EXCLUDED.skip_reason,
        analyses = a.analyses + 1,
        updated_at = now()
    RETURNING a.message_id, a.model_version
), cleared AS (
    DELETE FROM analysis_skips s USING ins
    WHERE s.message_id = ins.message_id AND s.model_version = ins.model_version
)
SELECT count(*) FROM ins
"""


def upsert_analyses(conn: psycopg.Connection, rows: Sequence[tuple[Message, Analysis]]) -> int:
    """Write one ``ai_analysis`` row per (message, model_version) in ONE statement.

    Idempotent: a second call updates the row in place (``updated_at`` moves).
    Skipped analyses (``analysis.skipped``) store NULL scores and ``skip_reason``.
    ``sentiment``/``toxicity`` are rounded into the seed's DECIMAL(3,2) columns; the
    exact floats stay in ``scores["final"]`` beside every head's probabilities.
    Messages that vanished since they were fetched are left out. A stale skip row for
    the same (message, version) is cleared. Returns the number of rows written.
    """
    latest: dict[tuple[UUID, str], dict[str, Any]] = {}
    for msg, an in rows:
        if not an.model_version:
            raise ValueError(f"analysis for message {msg.id} has no model_version")
        latest[(msg.id, an.model_version)] = _analysis_record(msg, an)  # last one wins
    if not latest:
        return 0
    payload = json.dumps(list(latest.values()), allow_nan=False, default=str)
    with conn.transaction():
        return int(conn.execute(_UPSERT_SQL, (payload,)).fetchone()[0])


def _analysis_record(msg: Message, an: Analysis) -> dict[str, Any]:
    skipped = bool(an.skipped)
    sentiment = None if skipped else _finite(an.sentiment, -1.0, 1.0)
    toxicity = None if skipped else _finite(an.toxicity, 0.0, 1.0)
    scores: dict[str, Any] | None = None
    if not skipped:
        scores = _clean(an.scores) or {}
        final = {k: v for k, v in (("sentiment", sentiment), ("toxicity", toxicity)) if v is not None}
        if final:
            scores["final"] = final
        scores = scores or None
    confidence = None
    if not skipped and an.sentiment_label:
        confidence = _finite((an.scores.get("sentiment") or {}).get(an.sentiment_label), 0.0, 1.0)
    return {
        "message_id": str(msg.id),
        "message_created_at": msg.created_at.isoformat(),
        "sentiment_score": sentiment,
        "toxicity_score": toxicity,
        "language_code": _clean(an.language),
        "topics": None if skipped else _clean(list(an.topics)),
        "entities": _clean([
            {"text": e.text, "label": e.label, "start": e.start, "end": e.end} for e in an.entities
        ]),
        "confidence_score": confidence,
        "model_version": _clean(an.model_version),
        "sentiment_label": None if skipped else _clean(an.sentiment_label),
        "language_confidence": _finite(an.language_confidence, 0.0, 1.0),
        "scores": scores,
        "details": _clean(an.details) or None,
        "skip_reason": _clean(an.reason or "skipped") if skipped else None,
    }


_SKIPS_SQL = """
INSERT INTO analysis_skips AS s (message_id, model_version, reason)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[])
ON CONFLICT (message_id, model_version) DO UPDATE SET
    reason = EXCLUDED.reason, attempts = s.attempts + 1, last_seen = now()
"""


_REJECTED_SQL = """
INSERT INTO rejected_events AS r (task, raw, reason)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])
ON CONFLICT (task, raw) DO UPDATE SET
    reason = EXCLUDED.reason, attempts = r.attempts + 1, last_seen = now()
"""


def record_rejected(conn: psycopg.Connection, task: str, rejected: Sequence[tuple[str, str]]) -> None:
    """Record events whose argument names no message/channel at all (``(raw, reason)``,
    raw = the argument's repr): kept in ``rejected_events``, one row per distinct value."""
    latest = {_clean(str(raw))[:200]: _clean(str(reason)) or "unknown" for raw, reason in rejected}
    if not latest:
        return
    raws = list(latest)
    with conn.transaction():
        conn.execute(_REJECTED_SQL, ([task] * len(raws), raws, [latest[r] for r in raws]))


def record_skips(conn: psycopg.Connection, skips: Sequence[tuple[UUID, str]], model_version: str) -> None:
    """Record events that yield no analysis (``(message_id, reason)``; unknown ids
    welcome: no FK). A repeat bumps ``attempts``/``last_seen`` and keeps
    ``first_seen``. Never raises for the ids themselves."""
    latest: dict[UUID, str] = {}
    for mid, reason in skips:
        latest[_uuid(mid)] = _clean(str(reason)) or "unknown"
    if not latest:
        return
    ids = list(latest)
    with conn.transaction():
        conn.execute(_SKIPS_SQL, (ids, [model_version] * len(ids), [latest[i] for i in ids]))


_STATE_SQL = """
SELECT message_id, 'analysed' FROM ai_analysis
WHERE message_id = ANY(%(ids)s) AND model_version = %(version)s
UNION ALL
SELECT message_id, reason FROM analysis_skips
WHERE message_id = ANY(%(ids)s) AND model_version = %(version)s AND reason = %(lost)s
"""


def analysis_state(conn: psycopg.Connection, ids: Iterable[UUID], model_version: str) -> dict[UUID, str]:
    """Which of ``ids`` are settled for ``model_version``: ``id ->`` :data:`ANALYSED` (a row
    exists) or :data:`SKIP_WORKER_LOST` (quarantined). Both lookups are primary/unique-key
    probes; ids absent from the result still need an analysis."""
    wanted = list(dict.fromkeys(_uuid(i) for i in ids))
    if not wanted:
        return {}
    params = {"ids": wanted, "version": model_version, "lost": SKIP_WORKER_LOST}
    with conn.transaction():
        state: dict[UUID, str] = {}
        for mid, what in conn.execute(_STATE_SQL, params):
            state.setdefault(mid, what)  # a row wins over a stale skip
        return state


_STORED_SQL = """
SELECT message_id, language_code, language_confidence, sentiment_score, sentiment_label,
       toxicity_score, scores, details, skip_reason
FROM ai_analysis
WHERE message_id = ANY(%(ids)s) AND model_version = %(version)s
  AND updated_at > now() - make_interval(secs => %(within)s)
"""


def stored_analyses(conn: psycopg.Connection, ids: Iterable[UUID], model_version: str, *,
                    written_within_s: float) -> dict[UUID, Analysis]:
    """The ``ai_analysis`` rows of ``ids`` for ``model_version`` last written within
    ``written_within_s`` seconds, as :class:`Analysis` (what an alert needs: the exact
    scores from ``scores["final"]``, the heads' probabilities, ``details``; topics and
    entities are left out). Ids without such a row are absent."""
    wanted = list(dict.fromkeys(_uuid(i) for i in ids))
    if not wanted:
        return {}
    out: dict[UUID, Analysis] = {}
    params = {"ids": wanted, "version": model_version, "within": float(written_within_s)}
    with conn.transaction():
        rows = conn.execute(_STORED_SQL, params).fetchall()
    for mid, lang, lang_conf, sentiment, label, toxicity, scores, details, skip in rows:
        scores = dict(scores or {})
        final = scores.pop("final", None) or {}
        exact = {k: final.get(k, v) for k, v in (("sentiment", sentiment), ("toxicity", toxicity))}
        out[mid] = Analysis(
            lang or "und", float(lang_conf or 0.0),
            sentiment=None if exact["sentiment"] is None else float(exact["sentiment"]),
            sentiment_label=label,
            toxicity=None if exact["toxicity"] is None else float(exact["toxicity"]),
            scores=scores, model_version=model_version, skipped=skip is not None, reason=skip,
            details=dict(details or {}),
        )
    return out


_MISSING_SQL = """
SELECT m.id
FROM messages m
WHERE m.deleted_at IS NULL
  AND m.created_at < now() - make_interval(secs => %(older)s)
  AND (%(since)s::timestamptz IS NULL OR m.created_at >= %(since)s::timestamptz)
  AND m.created_at < COALESCE((SELECT h.created_at FROM messages h WHERE h.id = %(horizon)s::uuid),
                              'infinity'::timestamptz)
  AND NOT EXISTS (SELECT 1 FROM ai_analysis a
                  WHERE a.message_id = m.id AND (%(version)s::text IS NULL OR a.model_version = %(version)s))
  AND NOT EXISTS (SELECT 1 FROM analysis_skips s
                  WHERE s.message_id = m.id AND (%(version)s::text IS NULL OR s.model_version = %(version)s)
                    AND s.reason <> %(missing)s)
ORDER BY m.created_at, m.id
LIMIT %(limit)s
"""


def messages_missing_analysis(
    conn: psycopg.Connection,
    model_version: str | None,
    *,
    older_than_s: float,
    since: datetime | None = None,
    before_message: UUID | None = None,
    limit: int,
) -> list[UUID]:
    """Ids of live messages older than ``older_than_s`` seconds (and not before
    ``since``) with no ``ai_analysis`` row for ``model_version`` — ``None``: for any
    version, what the sweeper asks (a message never analysed; a new model version
    re-analyses history only when an operator backfills) — oldest first (no message
    starves). Deleted messages and ids skipped (for that version) are left out, except a
    :data:`SKIP_MISSING` skip: the message has appeared since, so it is due.

    ``before_message``: only messages created before that one (the sweeper passes the
    oldest event still queued: what was created after it may well be queued too)."""
    params = {"older": float(older_than_s), "since": since, "version": model_version,
              "horizon": before_message,
              "missing": SKIP_MISSING, "limit": int(limit)}
    with conn.transaction():
        return [r[0] for r in conn.execute(_MISSING_SQL, params)]


# --- helpers ------------------------------------------------------------------


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _finite(x: float | None, lo: float, hi: float) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else min(hi, max(lo, x))


def _clean(value: Any) -> Any:
    """Make a value JSONB-safe: no NUL characters or lone surrogates in strings, no
    NaN/inf floats (PostgreSQL rejects all three)."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (int, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return _clean(str(value))
