"""SQL of ``message_embeddings``: the analysis pass's message vectors, reused by summaries.

Vectors are stored as float16 bytes (384-d MiniLM: 768 bytes a message); ``encoder``
names the encoder + adapter that made them, and a reader only takes vectors of its own
encoder. The table is a cache (migration 0056): a row that is missing is recomputed by
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
SELECT message_id, embedding FROM message_embeddings
WHERE message_id = ANY(%s) AND encoder = %s
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


def upsert(conn: psycopg.Connection, encoder: str, items: Sequence[tuple[UUID, np.ndarray]]) -> int:
    """Store ``(message_id, vector)`` pairs made by ``encoder`` in ONE statement (idempotent)."""
    latest = {mid: vec for mid, vec in items}
    if not latest:
        return 0
    ids = list(latest)
    with conn.transaction():
        conn.execute(_UPSERT, (ids, [encoder] * len(ids), [to_bytes(latest[i]) for i in ids]))
    return len(ids)


def read(conn: psycopg.Connection, encoder: str, ids: Sequence[UUID]) -> dict[UUID, np.ndarray]:
    """Stored vectors of ``ids`` made by ``encoder`` (absent ids: not stored or another encoder)."""
    if not ids:
        return {}
    return {mid: from_bytes(raw) for mid, raw in conn.execute(_READ, (list(ids), encoder))}


def prune(conn: psycopg.Connection, older_than_s: int) -> int:
    """Drop vectors older than ``older_than_s`` seconds; returns how many."""
    with conn.transaction():
        return conn.execute(_PRUNE, (int(older_than_s),)).rowcount
