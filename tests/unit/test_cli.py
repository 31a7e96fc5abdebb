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
