"""The sample flow shared by ``enrichment-ai run`` and ``enrichment-ai demo``.

Start the stack (services, migrations, a worker and beat), insert the built-in sample
conversation, enqueue its messages exactly as the platform would (``send_task``), and
show what lands: analyses as a table, then moderation alerts, conversation summaries
and one day of rollups.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from enrichment_ai.config import Settings

COLUMNS = (("channel", 14), ("author", 10), ("lang", 4), ("sentiment", 15), ("tox", 5),
           ("topics", 24), ("entities", 26), ("message / skip reason", 43))


def _cut(text: Any, width: int) -> str:
    s = " ".join(str(text if text is not None else "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


#: marks a score transferred to the message's language (no validated data in it; coverage.py)
TRANSFERRED_MARK = "~"


def header() -> str:
    """Column titles and a rule (and what the transferred mark means)."""
    titles = " ".join(t.ljust(w) for t, w in COLUMNS)
    return (f"{TRANSFERRED_MARK} after a score: transferred to that language (not validated on labelled data in it)\n"
            f"{titles}\n{'-' * len(titles)}")


def _mark(row: dict[str, Any], group: str) -> str:
    return TRANSFERRED_MARK if row.get(f"{group}_coverage") == "transferred" else ""


def format_row(row: dict[str, Any]) -> str:
    """One analysed (or skipped) message as a table line."""
    sentiment = ("" if row["sentiment"] is None
                 else f"{row['sentiment_label'] or ''} {float(row['sentiment']):+.2f}{_mark(row, 'sentiment')}")
    tox = "" if row["toxicity"] is None else f"{float(row['toxicity']):.2f}{_mark(row, 'toxicity')}"
    ents = ", ".join(f"{e.get('text')}/{e.get('label')}" for e in (row["entities"] or []))
    tail = f"[skip: {row['skip_reason']}] {row['content'] or ''}" if row["skip_reason"] else row["content"]
    cells = (f"#{row['channel']}", row["author"], row["language"] or "", sentiment, tox,
             ", ".join(row["topics"] or []), ents, tail)
    return " ".join(_cut(c, w).ljust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True)).rstrip()


class SampleRun:
    """One pass of the sample flow against a started :class:`~enrichment_ai.cli.stack.Stack`."""

    def __init__(self, stack, out: Callable[[str], None] = print) -> None:
        from enrichment_ai import db
        from workers.app import create_app

        self.stack = stack
        self.settings: Settings = stack.settings_with_urls()
        self.out = out
        self.conn = db.connect(self.settings.database_url)
        self.app = create_app(self.settings)
        self.ids: list[UUID] = []
        self.shown: set[UUID] = set()
        self.started = datetime.now(UTC)
        self.channels: list[UUID] = []
        self.servers: list[UUID] = []
        self._redis: Any = None

    def close(self) -> None:
        self.app.close()
        self.conn.close()
        if self._redis is not None:
            self._redis.close()

    def _client(self):
        """This run's Redis client (the broker's server), opened on first use."""
        if self._redis is None:
            from enrichment_ai.embedded import redis_client

            self._redis = redis_client(self.settings.redis_url)
        return self._redis

    def _on_their_way(self) -> set[str]:
        """Message ids whose events the worker has not finished (their pending markers,
        set by ``enqueue_analyses`` and cleared when the batch is done); empty if Redis
        cannot say."""
        from workers import markers

        try:
            return set(markers.pending_holders(self._client(), [str(i) for i in self.ids]))
        except Exception:  # noqa: BLE001 - fall back to the rows alone
            return set()

    def feed(self) -> int:
        """Insert the sample conversation and enqueue every message of it."""
        from enrichment_ai.db import views
        from enrichment_ai.sample import insert_sample_conversation
        from workers.tasks import enqueue_analyses

        self.ids = list(insert_sample_conversation(self.conn))
        self.channels, self.servers = views.scope_of(self.conn, self.ids)
        self.started = datetime.now(UTC)
        return enqueue_analyses(self.app, self.ids)

    def show_new_analyses(self) -> int:
        """Print rows not shown yet; returns how many messages are still pending.

        A row stored before :meth:`feed` comes from an earlier run on the same data dir
        (the sample's message ids are fixed): its re-enqueued event is acknowledged as
        already analysed, so no new row will ever land for it. It is shown as stored, with
        a note, instead of being waited for (which hung a second ``make run`` for the
        whole timeout with an empty table)."""
        from enrichment_ai.db import views

        pending = earlier = 0
        # A row from an earlier run is not this run's answer while its event is still on its
        # way: after a model upgrade (a new version, PIPELINE_VERSION, another encoder) the
        # worker analyses it again, and the old row shown at once hid the new one.
        on_way = self._on_their_way()
        for row in views.analyses_for(self.conn, self.ids):
            if row["message_id"] in self.shown:
                continue
            if row["done"] and row["analysed_at"] is not None and str(row["message_id"]) not in on_way:
                self.shown.add(row["message_id"])
                self.out(format_row(row))
                earlier += row["analysed_at"] < self.started
            else:
                pending += 1
        if earlier:
            self.out(f"  ({earlier} of the rows above were stored by an earlier run on this data dir: their "
                     "events were enqueued again and the worker acknowledged them as already analysed, one row "
                     "per message; `make clean` starts from empty)")
        return pending

    def wait_for_analyses(self, timeout_s: float, poll_s: float = 0.5) -> int:
        """Show analyses as they land until all are in (0) or the timeout (pending count)."""
        self.out(header())
        deadline = time.monotonic() + timeout_s
        while (pending := self.show_new_analyses()) and time.monotonic() < deadline:
            self.stack.check_alive()
            time.sleep(poll_s)
        return pending

    def request_rollups(self) -> list[date]:
        """Ask the worker for the rollups of every UTC day the sample spans."""
        days = sorted({r[0] for r in self.conn.execute(
            "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM messages WHERE id = ANY(%s)",
            (self.ids,))})
        for day in days:
            self.app.send_task("enrichment.nightly_rollup", kwargs={"day": day.isoformat()})
        return days

    def alerts(self) -> list[str]:
        """Moderation alerts in the sample servers' streams, formatted."""
        from enrichment_ai import alerts

        return [alerts.format_alert(f) for sid in self.servers for _i, f in alerts.read(self._client(), sid)]

    def summaries(self) -> list[dict]:
        from enrichment_ai.db import views

        return views.summaries_for(self.conn, self.channels)

    def health(self, days: Sequence[date]) -> list[dict]:
        from enrichment_ai.db import views

        return [r for r in views.health_for(self.conn, self.servers) if r["date"] in set(days)]

    def reputations(self, limit: int = 10) -> list[dict]:
        """Top reputation scores of the sample servers (written by the rollup)."""
        from enrichment_ai.db import views

        return views.reputation_for(self.conn, self.servers, limit=limit)

    def show_results(self, days: Sequence[date], timeout_s: float) -> tuple[int, int, int]:
        """Wait (up to ``timeout_s``) for at least one alert, summary and rollup day, then
        print them all (community health next to the top reputations); returns the counts
        of alerts, summaries and health rows."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (self.alerts() and self.summaries() and self.reputations()
                    and len({r["date"] for r in self.health(days)}) == len(days)):
                break
            self.stack.check_alive()
            time.sleep(1)
        alerts, summaries, health = self.alerts(), self.summaries(), self.health(days)
        self.out(f"\nModeration alerts ({len(alerts)}):")
        for line in alerts:
            self.out(f"  {line}")
        self.out(f"\nConversation summaries ({len(summaries)}):")
        for s in summaries:
            self.out(f"  #{s['channel']} ({s['message_count']} messages): {s['summary']}")
            for point in s["key_points"] or []:
                self.out(f"    - {point}")
        self.out(f"\nCommunity health, UTC days {', '.join(map(str, days))} ({len(health)} rows):")
        self.out("  server               day         active msgs  positive  incidents  mod.actions  health")
        for h in health:
            self.out(f"  {_cut(h['server'], 20):20} {h['date']}  {h['active_users']:6} {h['message_count']:5}"
                     f"  {_num(h['positive_sentiment_ratio']):>8}  {h['toxicity_incidents']:9}"
                     f"  {h['moderation_actions']:11}  {_num(h['health_score']):>6}")
        reputations = self.reputations()
        self.out(f"\nTop reputations ({len(reputations)}):")
        self.out("  server               member        score  helpful  quality  engagement  mod.actions")
        for r in reputations:
            self.out(f"  {_cut(r['server'], 20):20} {_cut(r['member'], 12):12} {r['score']:6}"
                     f"  {r['helpful_messages']:7}  {r['quality_contributions']:7}"
                     f"  {r['community_engagement']:10}  {r['moderation_actions']:11}")
        return len(alerts), len(summaries), len(health)


def _num(x: Any) -> str:
    return "" if x is None else f"{float(x):.2f}"
