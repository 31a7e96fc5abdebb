"""The language prior end to end: locales and the channel's recent languages travel from
the database through process.analyze_batch into the stored row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from enrichment_ai import process
from enrichment_ai.db import store
from enrichment_ai.types import Analysis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def enricher():
    from enrichment_ai.config import Settings
    from enrichment_ai.pipeline import Enricher

    return Enricher(Settings(device="cpu")).load()


def _stored(conn, mid):
    return conn.execute(
        "SELECT language_code, details->>'language_source', sentiment_score FROM ai_analysis WHERE message_id = %s",
        (mid,),
    ).fetchone()


def test_short_messages_get_the_channel_and_locale_language(conn, factory, enricher, settings):
    fr_server, en_server = factory.server(locale="fr"), factory.server(locale="en-US")
    fr_channel, en_channel = factory.channel(fr_server), factory.channel(en_server)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=5)
    earlier = [factory.message(fr_channel, content=f"m{i}", created_at=t0 + timedelta(seconds=i)) for i in range(3)]
    msgs = store.fetch_messages(conn, earlier)
    store.upsert_analyses(conn, [(msgs[m], Analysis("fr", 0.9, model_version="older/1")) for m in earlier])

    fr_author, en_author = factory.user(locale="fr"), factory.user(locale="en-US")
    short_fr = factory.message(fr_channel, fr_author, "ok merci")
    short_en = factory.message(en_channel, en_author, "same here")
    clear_de = factory.message(en_channel, en_author, "Das Wetter ist heute wirklich schön und warm.")
    process.analyze_batch(conn, enricher, [short_fr, short_en, clear_de], settings)

    assert _stored(conn, short_fr)[:2] == ("fr", "prior")
    lang, source, sentiment = _stored(conn, short_en)
    assert (lang, source) == ("en", "prior") and sentiment is not None  # now scored as English
    assert _stored(conn, clear_de)[:2] == ("de", None)  # a wrong (en-US) prior does not relabel clear text
