"""SQL of ``message_embeddings``: the analysis pass's message vectors, reused by summaries.

Vectors are stored as float16 bytes (384-d: 768 bytes a message); ``encoder`` names the
encoder + adapter that made them (its embedding space), and a reader takes only vectors of
the spaces it knows (with English routed to the English artifact there are two:
analysis/routed.py). The table is a cache (migration 0056): a row that is missing is recomputed by
the reader, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np
import psycopg

_UPSERT = """
INSERT INTO message_embeddings AS e (message_id, encoder, embedding)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bytea[])
ON CONFLICT (message_id) DO UPDATE SET
    encoder = EXCLUDED.encoder, embedding = EXCLUDED.embedding, created_at = now()
"""

_READ = """
SELECT message_id, encoder, embedding FROM message_embeddings
WHERE message_id = ANY(%s) AND encoder = ANY(%s)
"""

_PRUNE = """
DELETE FROM message_embeddings WHERE created_at < now() - make_interval(secs => %s)
"""


def to_bytes(vec: np.ndarray) -> bytes:
    """One vector as little-endian float16 bytes."""
    return np.asarray(vec, dtype="<f2").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    """Bytes written by :func:`to_bytes` as a float32 vector."""
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)


def upsert(conn: psycopg.Connection, items: Sequence[tuple[UUID, str, np.ndarray]]) -> int:
    """Store ``(message_id, encoder, vector)`` triples in ONE statement (idempotent)."""
    latest = {mid: (enc, vec) for mid, enc, vec in items}
    if not latest:
        return 0
    ids = list(latest)
    with conn.transaction():
        conn.execute(_UPSERT, (ids, [latest[i][0] for i in ids], [to_bytes(latest[i][1]) for i in ids]))
    return len(ids)


def read(conn: psycopg.Connection, encoders: Sequence[str], ids: Sequence[UUID]) -> dict[UUID, tuple[str, np.ndarray]]:
    """Stored ``(encoder, vector)`` of ``ids`` made by any of ``encoders`` (absent ids: not
    stored, or made by another encoder)."""
    if not ids:
        return {}
    return {mid: (enc, from_bytes(raw)) for mid, enc, raw in conn.execute(_READ, (list(ids), list(encoders)))}


def prune(conn: psycopg.Connection, older_than_s: int) -> int:
    """Drop vectors older than ``older_than_s`` seconds; returns how many."""
    with conn.transaction():
        return conn.execute(_PRUNE, (int(older_than_s),)).rowcount
