"""db.store: fetch, upsert, skips, sweeper query, on the real database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from enrichment_ai.db import store
from enrichment_ai.types import Analysis, Entity

pytestmark = pytest.mark.integration

V = "test-model/1"


def _analysis(**kw) -> Analysis:
    base = dict(language="en", language_confidence=0.97, sentiment=0.456, sentiment_label="positive",
                toxicity=0.0349, scores={"sentiment": {"positive": 0.7, "neutral": 0.2, "negative": 0.1},
                                         "toxicity": {"toxic": 0.0349, "offensive": 0.01}},
                topics=["gaming"], entities=[Entity("Paris", "GPE", 10, 15)], model_version=V)
    base.update(kw)
    return Analysis(**base)


def _row(conn, mid, version=V):
    return conn.execute(
        "SELECT sentiment_score, toxicity_score, language_code, sentiment_label, scores, skip_reason,"
        " topics, entities, confidence_score, language_confidence, created_at, updated_at"
        " FROM ai_analysis WHERE message_id = %s AND model_version = %s", (mid, version)).fetchall()


def test_fetch_messages_joins_and_flags(conn, factory):
    server = factory.server()
    ch, dm = factory.channel(server), factory.channel(dm=True)
    bot = factory.user(bot=True)
    live = factory.message(ch, bot, "beep")
    gone = factory.message(dm, content="secret", deleted=True)
    unknown = uuid.uuid4()
    got = store.fetch_messages(conn, [live, gone, unknown, live])
    assert set(got) == {live, gone}
    assert got[live].server_id == server and got[live].channel_id == ch
    assert got[live].author_bot is True and got[live].deleted is False and got[live].content == "beep"
    assert got[gone].deleted is True and got[gone].server_id is None
    assert store.fetch_messages(conn, []) == {}


def test_upsert_twice_keeps_one_updated_row(conn, factory):
    mid = factory.message(content="I love Paris")
    msg = store.fetch_messages(conn, [mid])[mid]
    assert store.upsert_analyses(conn, [(msg, _analysis())]) == 1
    (first,) = _row(conn, mid)
    assert first[0] == Decimal("0.46") and first[1] == Decimal("0.03")
    assert first[4]["final"] == {"sentiment": 0.456, "toxicity": 0.0349}
    assert first[4]["sentiment"]["positive"] == 0.7
    assert first[6] == ["gaming"] and first[7] == [{"text": "Paris", "label": "GPE", "start": 10, "end": 15}]
    assert first[8] == Decimal("0.70") and first[9] == pytest.approx(0.97)
    assert store.upsert_analyses(conn, [(msg, _analysis(sentiment=-0.999, toxicity=0.91))]) == 1
    rows = _row(conn, mid)
    assert len(rows) == 1
    assert rows[0][0] == Decimal("-1.00") and rows[0][1] == Decimal("0.91")
    assert rows[0][10] == first[10] and rows[0][11] >= first[11]


def test_upsert_skipped_and_weird_values(conn, factory):
    m1, m2 = factory.message(content="こんにちは"), factory.message(content="x")
    msgs = store.fetch_messages(conn, [m1, m2])
    skipped = _analysis(language="ja", skipped=True, reason="unsupported_language:ja")
    weird = _analysis(sentiment=float("nan"), toxicity=float("inf"),
                      details={"why": "bad \x00 \ud800 text"}, scores={"t": {"x": float("nan")}})
    # a duplicate in the same batch: last one wins, no "affect row a second time" error
    n = store.upsert_analyses(conn, [(msgs[m1], _analysis()), (msgs[m1], skipped), (msgs[m2], weird)])
    assert n == 2
    (r1,) = _row(conn, m1)
    assert r1[0] is None and r1[1] is None and r1[4] is None and r1[5] == "unsupported_language:ja"
    assert r1[2] == "ja"
    (r2,) = _row(conn, m2)
    assert r2[0] is None and r2[1] is None  # non-finite scores are not scores
    assert r2[4]["t"] == {"x": None}


def test_upsert_ignores_vanished_message(conn, factory):
    mid = factory.message()
    msg = store.fetch_messages(conn, [mid])[mid]
    conn.execute("DELETE FROM messages WHERE id = %s", (mid,))
    assert store.upsert_analyses(conn, [(msg, _analysis())]) == 0
    assert store.upsert_analyses(conn, []) == 0


def test_record_skips_idempotent(conn, factory):
    unknown, deleted = uuid.uuid4(), factory.message(deleted=True)
    store.record_skips(conn, [(unknown, store.SKIP_MISSING), (deleted, store.SKIP_DELETED)], V)
    store.record_skips(conn, [(unknown, store.SKIP_MISSING), (unknown, store.SKIP_MISSING)], V)
    store.record_skips(conn, [], V)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT message_id, reason, attempts, first_seen < last_seen FROM analysis_skips"
        " WHERE message_id = ANY(%s) AND model_version = %s", ([unknown, deleted], V))}
    assert rows == {unknown: (store.SKIP_MISSING, 2, True), deleted: ("deleted", 1, False)}


def test_messages_missing_analysis(conn, factory):
    # the session DB is shared: put this test's messages in a quiet stretch of the past
    # so they are the oldest after `since`
    version = f"sweep-{uuid.uuid4().hex[:8]}"
    ch, author = factory.channel(), factory.user()
    t0 = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=uuid.uuid4().int % 500_000)
    old = [factory.message(ch, author, f"m{i}", created_at=t0 + timedelta(seconds=i)) for i in range(5)]
    gone = factory.message(ch, author, "deleted", created_at=t0, deleted=True)
    since = t0 - timedelta(seconds=1)

    def due(v=version, limit=5, **kw):
        return store.messages_missing_analysis(conn, v, older_than_s=kw.pop("older", 300),
                                               since=kw.pop("since", since), limit=limit)

    assert due() == old and gone not in due(limit=6)
    msgs = store.fetch_messages(conn, old[:2])
    store.upsert_analyses(conn, [(msgs[i], _analysis(model_version=version)) for i in old[:2]])
    store.record_skips(conn, [(old[2], "empty"), (old[3], store.SKIP_MISSING)], version)
    assert due(limit=2) == [old[3], old[4]]  # a "not_found" skip for a message that now exists is due again
    assert due(limit=1) == [old[3]]
    assert due(version + "x") == old  # another model version still needs all of them (a backfill)
    assert due(None, limit=2) == [old[3], old[4]]  # the sweeper's question: analysed by no version at all
    # the grace period: a message from just now is due only with older_than_s=0
    fresh = factory.message(ch, author, "just now")
    created = store.fetch_messages(conn, [fresh])[fresh].created_at
    near = created - timedelta(microseconds=1)
    assert fresh not in due(since=near, older=300, limit=1000)
    assert fresh in due(since=near, older=0, limit=1000)


def test_missing_analysis_stops_before_the_oldest_queued_message(conn, factory):
    version = f"horizon-{uuid.uuid4().hex[:8]}"
    ch, author = factory.channel(), factory.user()
    t0 = datetime(1990, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=uuid.uuid4().int % 500_000)
    ids = [factory.message(ch, author, f"m{i}", created_at=t0 + timedelta(seconds=i)) for i in range(4)]

    def due(**kw):  # other tests' messages may fall after t0: look at ours only
        found = store.messages_missing_analysis(conn, version, older_than_s=0, since=t0, limit=10_000, **kw)
        return [i for i in found if i in ids]

    assert due() == ids
    assert due(before_message=ids[2]) == ids[:2]  # ids[2] is still queued: so may be what follows
    assert due(before_message=uuid.uuid4()) == ids  # an id that names no message: no horizon


def test_analysis_state_and_the_upsert_counter(conn, factory):
    version = f"state-{uuid.uuid4().hex[:8]}"
    done, poison, todo = (factory.message(content=c) for c in ("done", "poison", "todo"))
    msgs = store.fetch_messages(conn, [done])
    store.upsert_analyses(conn, [(msgs[done], _analysis(model_version=version))])
    store.record_skips(conn, [(poison, store.SKIP_WORKER_LOST)], version)
    assert store.analysis_state(conn, [done, poison, todo], version) == {
        done: store.ANALYSED, poison: store.SKIP_WORKER_LOST}
    assert store.analysis_state(conn, [done], version + "x") == {}  # a new model version recomputes
    assert store.analysis_state(conn, [], version) == {}
    store.upsert_analyses(conn, [(msgs[done], _analysis(model_version=version))])
    assert conn.execute("SELECT analyses FROM ai_analysis WHERE message_id = %s", (done,)).fetchone() == (2,)


def test_fetch_messages_carries_the_language_prior(conn, factory):
    server = factory.server(locale="fr")
    ch, other = factory.channel(server), factory.channel(server)
    author = factory.user(locale="pt-BR")
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    earlier = [factory.message(ch, content=f"m{i}", created_at=t0 + timedelta(seconds=i)) for i in range(4)]
    msgs = store.fetch_messages(conn, earlier)
    langs = ["fr", "fr", "und", "es"]  # und does not count as a recent language
    store.upsert_analyses(conn, [(msgs[m], _analysis(language=lang)) for m, lang in zip(earlier, langs)])
    new = factory.message(ch, author, "ok merci")
    alone = factory.message(other, author, "hi")
    got = store.fetch_messages(conn, [new, alone])
    assert got[new].server_locale == "fr" and got[new].author_locale == "pt-BR"
    assert got[new].channel_languages == ("es", "fr", "fr")  # newest first
    assert got[alone].channel_languages == () and got[alone].server_locale == "fr"
    dm = store.fetch_messages(conn, [factory.message(factory.channel(dm=True), author)])
    (only,) = dm.values()
    assert only.server_locale is None and only.author_locale == "pt-BR"
    assert not got[new].validated_only and not only.validated_only  # no server_enrichment_settings row


def test_fetch_messages_carries_the_servers_validated_languages_only(conn, factory):
    strict, lax = factory.server(), factory.server()
    conn.execute("INSERT INTO server_enrichment_settings (server_id, validated_languages_only) VALUES (%s, TRUE), (%s, FALSE)",
                 (strict, lax))
    conn.commit()
    a, b = factory.message(factory.channel(strict), content="Hola"), factory.message(factory.channel(lax), content="Hola")
    got = store.fetch_messages(conn, [a, b])
    assert got[a].validated_only is True and got[b].validated_only is False
