"""README stays true: its configuration table is generated from Settings.

Regenerate after changing a setting: ``.venv/bin/python tests/unit/test_readme.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def settings_table() -> str:
    """Markdown table of every Settings field: variable, default, description."""
    from enrichment_ai.config import MODELS_DIR, Settings

    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default).replace(str(MODELS_DIR), "models").replace(str(Path.home()), "~")
        shown = "unset" if default is None else json.dumps(default) if isinstance(default, (list, dict, bool)) else str(default)
        if name == "model_cache":  # depends on the environment: shown as its rule
            shown = "${XDG_CACHE_HOME:-~/.cache}/enrichment-ai"
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `ENRICHMENT_{name.upper()}` | `{shown}` | {desc} |")
    return "\n".join(rows)


def _block(text: str) -> str:
    assert START in text and END in text, "README lacks the settings table markers"
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def test_readme_settings_table_matches_settings():
    assert _block(README.read_text(encoding="utf-8")) == settings_table(), \
        "README configuration table is stale: run python tests/unit/test_readme.py --write"


if __name__ == "__main__" and "--write" in sys.argv:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{settings_table()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")
