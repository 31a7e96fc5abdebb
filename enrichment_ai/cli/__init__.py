"""``enrichment-ai`` command line.

Each sub-command lives in its own module of this package, named in :data:`COMMANDS`
(an explicit registry: nothing registers itself at import). A command module
exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args, settings) -> int``.
Only the command that runs has its arguments built; ``enrichment-ai --help`` imports the
(light) command modules for their one-line help. Benchmarks are ``make bench``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: command name -> module under enrichment_ai.cli
COMMANDS: dict[str, str] = {
    "run": "run",
    "demo": "demo",
    "analyze": "analyze",
    "migrate": "migrate",
    "enqueue": "enqueue",
    "backfill": "enqueue",
    "worker": "worker",
    "beat": "beat",
    "train": "train",
    "eval": "evaluate",
    "seed": "seed",
    "rollup": "rollup",
    "alerts": "alerts",
    "report": "report",
    "summarize": "summarize",
    "services": "services",
    "health": "health",
}


def _module(name: str):
    return importlib.import_module(f"enrichment_ai.cli.{COMMANDS[name]}")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enrichment-ai", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name in COMMANDS:
        if name == wanted:
            mod = _module(name)
            p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
            mod.add_arguments(p)
            if name == "backfill" and hasattr(mod, "add_backfill_defaults"):
                mod.add_backfill_defaults(p)
        elif wanted is None:  # --help / no command: list every command with its one line
            sub.add_parser(name, help=_module(name).HELP, add_help=False)
        else:
            sub.add_parser(name, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from enrichment_ai.config import Settings

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        print("\ncommands: " + ", ".join(COMMANDS))
        return 2
    return int(_module(args.command).run(args, Settings()) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
