"""Moderator alerts: toxic messages to a Redis stream per server, once per message —
docs/metrics.md "Moderator alerts".

Called after the analysis batch commits. A Lua script sets the dedup key (NX) and
appends to the stream atomically, so a redelivered batch never alerts twice; a crash
before the script ran means the redelivery publishes it (at-least-once overall).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import psycopg

from enrichment_ai.config import Settings
from enrichment_ai.db import alert_sql
from enrichment_ai.types import Analysis, Message

STREAM = "enrichment:alerts:{server_id}"
#: Once per message, whatever computed its score: a new model version or a forced
#: recompute of a message a moderator already heard of does not alert again.
DEDUP_KEY = "enrichment:alerted:{message_id}"
DEDUP_TTL_S = 30 * 24 * 3600
STREAM_MAXLEN = 10_000
SENTENCE_CHARS = 300
#: Heads of Analysis.scores an alert carries (the toxicity family).
SUB_SCORES = ("toxicity", "offensive", "hate")

#: KEYS: dedup key, stream. ARGV: ttl, maxlen, field, value, field, value, …
_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""


def stored_score(value: float) -> float:
    """``value`` as ``ai_analysis.toxicity_score`` (``DECIMAL(3,2)``) holds it: PostgreSQL
    rounds the float's shortest decimal form half away from zero. Alerts compare this, not
    the unrounded probability, so a row a moderator sees at 0.80 with the threshold at
    0.80 was alerted on, and one at 0.79 was not: the stored score and the alert agree."""
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def stream_key(server_id: UUID | str) -> str:
    return STREAM.format(server_id=server_id)


def _sentence(message: Message, analysis: Analysis) -> str:
    span = analysis.details.get("toxicity_span") if analysis.details else None
    text = span.get("text") if isinstance(span, dict) else None
    text = " ".join((text or message.content or "").split())
    return text if len(text) <= SENTENCE_CHARS else text[: SENTENCE_CHARS - 1] + "…"


def alert_fields(message: Message, analysis: Analysis, threshold: float, channel: str | None, author: str) -> dict[str, str]:
    """The stream entry for one flagged message (all values strings)."""
    return {
        "message_id": str(message.id),
        "server_id": str(message.server_id),
        "channel_id": str(message.channel_id),
        "channel": channel or "",
        "author_id": str(message.author_id),
        "author": author,
        "toxicity": f"{analysis.toxicity:.4f}",
        "threshold": f"{threshold:.4f}",
        "scores": json.dumps({k: v for k, v in analysis.scores.items() if k in SUB_SCORES}, sort_keys=True),
        "sentence": _sentence(message, analysis),
        "model_version": analysis.model_version,
        "created_at": message.created_at.astimezone(timezone.utc).isoformat(),
    }


def publish(redis_client: Any, conn: psycopg.Connection, analysed: Sequence[tuple[Message, Analysis]], settings: Settings) -> int:
    """Publish every analysed server message whose stored toxicity (:func:`stored_score`)
    is ≥ its server's threshold (``server_enrichment_settings``, else
    ``settings.toxicity_threshold``) once — unless the message is older than
    ``settings.alert_max_age_s`` (history re-analysed is not news for a moderator).
    Returns how many alerts this call appended (duplicates count 0)."""
    oldest = datetime.now(timezone.utc).timestamp() - settings.alert_max_age_s
    candidates = [
        (m, a) for m, a in analysed
        if m.server_id is not None and a.toxicity is not None and not a.skipped and not m.deleted
        and m.created_at.timestamp() >= oldest
    ]
    if not candidates:
        return 0
    theta = alert_sql.thresholds(conn, sorted({m.server_id for m, _ in candidates}, key=str), settings.toxicity_threshold)
    flagged = [(m, a) for m, a in candidates
               if theta.get(m.server_id) is not None and stored_score(a.toxicity) >= theta[m.server_id]]
    if not flagged:
        return 0
    names = alert_sql.names(conn, [(m.id, m.channel_id, m.author_id) for m, _ in flagged])
    script = redis_client.register_script(_PUBLISH_ONCE)
    published = 0
    for m, a in flagged:
        channel, author = names.get(m.id, (None, str(m.author_id)))
        fields = alert_fields(m, a, theta[m.server_id], channel, author)
        argv: list[str] = [str(DEDUP_TTL_S), str(STREAM_MAXLEN)]
        for k, v in fields.items():
            argv += [k, v]
        key = DEDUP_KEY.format(message_id=m.id)
        if script(keys=[key, stream_key(m.server_id)], args=argv):
            published += 1
    return published


def _decode(fields: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}


def read(redis_client: Any, server_id: UUID | str, *, last_id: str = "0", count: int = 100,
         block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
    """Entries of the server's stream after ``last_id`` (``XREAD``; blocks up to
    ``block_ms`` when given)."""
    got = redis_client.xread({stream_key(server_id): last_id}, count=count, block=block_ms)
    out = []
    for _stream, entries in got or []:
        for entry_id, fields in entries:
            out.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, _decode(fields)))
    return out


def follow(redis_client: Any, server_id: UUID | str, *, last_id: str = "$", block_ms: int = 5000) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield alerts as they arrive (``XREAD BLOCK``), forever."""
    while True:
        for entry_id, fields in read(redis_client, server_id, last_id=last_id, block_ms=block_ms):
            last_id = entry_id
            yield entry_id, fields


def format_alert(fields: dict[str, str]) -> str:
    """One readable line for a moderator."""
    try:
        when = datetime.fromisoformat(fields["created_at"]).strftime("%Y-%m-%d %H:%M:%SZ")
    except (KeyError, ValueError):
        when = fields.get("created_at", "?")
    subs = ""
    try:
        scores = json.loads(fields.get("scores") or "{}")
        for head in SUB_SCORES[1:]:
            val = scores.get(head, {}).get(head) if isinstance(scores.get(head), dict) else None
            if isinstance(val, (int, float)):
                subs += f", {head} {val:.2f}"
    except (json.JSONDecodeError, AttributeError):
        pass
    return (f"{when} #{fields.get('channel') or fields.get('channel_id')} @{fields.get('author')} "
            f"toxicity {float(fields.get('toxicity', 'nan')):.2f} (threshold {float(fields.get('threshold', 'nan')):.2f})"
            f"{subs}: \u201c{fields.get('sentence', '')}\u201d  [message {fields.get('message_id')}]")
