"""``make bench`` / ``python -m bench``: run every benchmark module and print one table.

Each module in :data:`MODULES` exposes ``run(**kwargs) -> list[dict]`` (rows of plain
values: medians of repeats and ratios against a baseline run side by side).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from bench import e2e

#: benchmark name -> module under bench/ (explicit registry)
MODULES: dict[str, str] = {"analyzers": "bench.analyzers", "rollup": "bench.rollup", "e2e": "bench.e2e",
                           "chaos": "bench.chaos"}
#: run only when asked for (``--only chaos`` / ``make chaos``): minutes of fault injection
ON_REQUEST = {"chaos"}


def print_table(name: str, rows: list[dict]) -> None:
    """Rows as an aligned text table (union of keys, in first-seen order)."""
    if not rows:
        print(f"{name}: no rows")
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print(f"\n== {name} ==")
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(MODULES), action="append", help="run only these benchmarks")
    p.add_argument("--messages", type=int, default=None,
                   help="size of the selected benchmarks: rollup messages (default 200000; 1000000 for the "
                        "headline), e2e backlog events (default 2000), chaos messages per scenario (default 3000)")
    p.add_argument("--scenario", action="append", help="chaos: run only these scenarios (default all)")
    p.add_argument("--days", type=int, default=90,
                   help="rollup benchmark: UTC days the messages span (default 90 = the reputation window)")
    p.add_argument("--repeats", type=int, default=3)
    e2e.add_arguments(p, messages=False)
    a = p.parse_args(argv)
    kwargs = {"rollup": {"messages": a.messages or 200_000, "repeats": a.repeats, "days": a.days},
              "analyzers": {"repeats": a.repeats},
              "e2e": e2e.kwargs_from(a, a.messages),
              "chaos": {"messages": a.messages or 3000, "only": a.scenario}}
    failed = 0
    for name in a.only or [m for m in MODULES if m not in ON_REQUEST]:
        try:
            rows = importlib.import_module(MODULES[name]).run(**kwargs.get(name, {}))
        except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
            traceback.print_exc()
            failed += 1
            continue
        print_table(name, rows)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
