"""Pure parts of the DB layer: migration files, row building, URL handling, sample data."""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime, timezone

import pytest

from enrichment_ai import db, sample
from enrichment_ai.db import store
from enrichment_ai.embedded import redis_client
from enrichment_ai.types import Analysis, Entity, Message


def _msg() -> Message:
    return Message(id=uuid.uuid4(), channel_id=uuid.uuid4(), server_id=None, author_id=uuid.uuid4(),
                   content="hi", created_at=datetime(2024, 5, 1, tzinfo=timezone.utc))


def test_migrations_are_numbered_unique_and_ordered():
    migs = db.migrations()
    names = [m.version for m in migs]
    assert names == sorted(names) and len(names) >= 3
    numbers = [int(n[:4]) for n in names]
    assert len(set(numbers)) == len(numbers), "two migrations share a number"
    for m in migs:
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+", m.version)
        assert "DROP TABLE" not in m.sql.upper(), f"{m.version}: a migration never drops tables"


def test_analysis_record_rounds_clamps_and_keeps_exact_values():
    an = Analysis(language="en", language_confidence=0.9, sentiment=1.7, sentiment_label="positive",
                  toxicity=0.123456, scores={"sentiment": {"positive": 0.8}}, topics=["music"],
                  entities=[Entity("Bob", "PERSON", 0, 3)], model_version="v1")
    rec = store._analysis_record(_msg(), an)
    assert rec["sentiment_score"] == 1.0 and rec["toxicity_score"] == 0.123456
    assert rec["scores"]["final"] == {"sentiment": 1.0, "toxicity": 0.123456}
    assert rec["confidence_score"] == 0.8 and rec["skip_reason"] is None
    assert rec["entities"] == [{"text": "Bob", "label": "PERSON", "start": 0, "end": 3}]


def test_analysis_record_for_skipped_has_no_scores():
    an = Analysis(language="ja", language_confidence=0.99, sentiment=0.5, toxicity=0.5,
                  scores={"x": {"y": 1.0}}, model_version="v1", skipped=True, reason="unsupported_language")
    rec = store._analysis_record(_msg(), an)
    assert rec["sentiment_score"] is None and rec["toxicity_score"] is None and rec["scores"] is None
    assert rec["skip_reason"] == "unsupported_language" and rec["language_code"] == "ja"


def test_clean_makes_values_jsonb_safe():
    out = store._clean({"a": "x\x00y\ud800", "b": [float("nan"), 1.5, math.inf], 3: (1, True, None)})
    assert out == {"a": "xy?", "b": [None, 1.5, None], "3": [1, True, None]}


def test_upsert_requires_model_version():
    with pytest.raises(ValueError, match="model_version"):
        store.upsert_analyses(None, [(_msg(), Analysis(language="en", language_confidence=1.0))])


@pytest.mark.parametrize("url, kwargs", [
    ("redis+socket:///tmp/x/redis.sock", {"path": "/tmp/x/redis.sock", "db": 0}),
    ("unix:///tmp/x/redis.sock?db=2", {"path": "/tmp/x/redis.sock", "db": 2}),
    ("redis://localhost:6390/1", {"host": "localhost", "port": 6390, "db": 1}),
])
def test_redis_client_parses_url_forms(url, kwargs):
    got = redis_client(url).connection_pool.connection_kwargs  # no connection is made
    for k, v in kwargs.items():
        assert got[k] == v


def test_sample_ids_are_stable_and_data_is_consistent():
    assert sample.sample_id("user:alice") == sample.sample_id("user:alice")
    users = {u for u, _, _ in sample.USERS}
    channels = {c for c, _, _ in sample.CHANNELS}
    assert all(c in channels and a in users for c, a, _ in sample.LINES)
    assert sample.LINES[sample.DELETED_LINE][1] == "grimlock"
    general = sum(1 for c, _, _ in sample.LINES if c == "pixel/general")
    assert general >= 25
