"""The command registry: every command is a real module, and --help lists them all."""

from __future__ import annotations

import importlib

import pytest

from enrichment_ai.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_a_module_with_the_command_interface(name):
    mod = importlib.import_module(f"enrichment_ai.cli.{COMMANDS[name]}")
    assert isinstance(mod.HELP, str) and mod.HELP.strip()
    assert callable(mod.add_arguments) and callable(mod.run)


def test_help_lists_every_command_with_its_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for name, module in COMMANDS.items():
        help_line = " ".join(importlib.import_module(f"enrichment_ai.cli.{module}").HELP.split())
        assert f"{name} {help_line[:30]}" in out


def test_readme_names_only_real_commands_and_every_command():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"enrichment-ai (\w+)", readme)) | set(re.findall(r"` / `(\w+) --", readme))
    assert named - set(COMMANDS) == set(), "README names commands that do not exist"
    assert set(COMMANDS) - named == set(), "commands the README does not mention"


def test_demo_rows_mark_transferred_scores():
    from enrichment_ai.cli.live import TRANSFERRED_MARK, format_row, header

    base = {"channel": "deutsch", "author": "grimlock", "language": "de", "sentiment": -0.8, "sentiment_label": "negative",
            "toxicity": 0.93, "topics": [], "entities": [], "skip_reason": None, "content": "Halt die Klappe"}
    validated = format_row(base | {"sentiment_coverage": "validated", "toxicity_coverage": "validated"})
    transferred = format_row(base | {"sentiment_coverage": "validated", "toxicity_coverage": "transferred"})
    assert "0.93 " in validated and TRANSFERRED_MARK not in validated
    assert f"0.93{TRANSFERRED_MARK}" in transferred and f"-0.80{TRANSFERRED_MARK}" not in transferred
    assert format_row(base).count(TRANSFERRED_MARK) == 0  # English-only artifact: no coverage block
    assert TRANSFERRED_MARK in header().splitlines()[0]


def test_sample_rows_stored_by_an_earlier_run_are_shown_not_waited_for(monkeypatch):
    """A second ``make run``/``demo`` on the same data dir: the sample's messages keep their
    ids, the worker acknowledges their events as already analysed and no new row lands, so
    waiting for one hung the demo for its whole timeout with an empty table."""
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    from enrichment_ai.cli.live import SampleRun
    from enrichment_ai.db import views

    started = datetime.now(UTC)
    base = {"channel": "general", "author": "Alice", "language": "en", "sentiment": 0.5, "sentiment_label": "positive",
            "toxicity": 0.1, "topics": [], "entities": [], "skip_reason": None, "done": True}
    rows = [base | {"message_id": uuid4(), "analysed_at": started - timedelta(days=1), "content": "stored yesterday"},
            base | {"message_id": uuid4(), "analysed_at": started + timedelta(seconds=1), "content": "landed now"},
            base | {"message_id": uuid4(), "done": False, "analysed_at": None, "content": "still queued"}]
    monkeypatch.setattr(views, "analyses_for", lambda conn, ids: rows)
    out: list[str] = []
    run = SampleRun.__new__(SampleRun)  # no stack: only the display logic is under test
    run.conn, run.ids, run.shown, run.started, run.out = None, [r["message_id"] for r in rows], set(), started, out.append
    assert run.show_new_analyses() == 1
    assert any("stored yesterday" in line for line in out) and any("landed now" in line for line in out)
    assert not any("still queued" in line for line in out)
    assert out[-1].strip().startswith("(1 of the rows above were stored by an earlier run")
    out.clear()
    assert run.show_new_analyses() == 1 and out == []  # nothing shown twice, no second note


def test_a_stored_row_whose_event_is_still_on_its_way_is_not_shown_yet(monkeypatch):
    """After a model upgrade the worker analyses the sample again: an earlier run's row
    shown at once hid the new one. A row counts only once its message's event is done
    (its pending marker cleared)."""
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    from enrichment_ai.cli.live import SampleRun
    from enrichment_ai.db import views

    started = datetime.now(UTC)
    base = {"channel": "general", "author": "Alice", "language": "en", "sentiment": 0.5, "sentiment_label": "positive",
            "toxicity": 0.1, "topics": [], "entities": [], "skip_reason": None, "done": True,
            "analysed_at": started - timedelta(days=1)}
    rows = [base | {"message_id": uuid4(), "content": "old version, being re-analysed"},
            base | {"message_id": uuid4(), "content": "acknowledged as already analysed"}]
    monkeypatch.setattr(views, "analyses_for", lambda conn, ids: rows)
    out: list[str] = []
    run = SampleRun.__new__(SampleRun)
    run.conn, run.ids, run.shown, run.started, run.out = None, [r["message_id"] for r in rows], set(), started, out.append
    on_way = {str(rows[0]["message_id"])}
    run._on_their_way = lambda: on_way
    assert run.show_new_analyses() == 1
    assert not any("being re-analysed" in line for line in out) and any("already analysed" in line for line in out)
    on_way.clear()
    rows[0] = rows[0] | {"analysed_at": started + timedelta(seconds=2), "content": "new version"}
    assert run.show_new_analyses() == 0 and any("new version" in line for line in out)
