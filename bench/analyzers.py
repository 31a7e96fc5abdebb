"""Analyzer throughput: messages/s at batch size 1 vs batched, on a fixed chat sample.

``run()`` returns one row per (analyzer, batch size) with the median of the repeats and
the ratio to batch size 1, for ``bench/__main__.py`` (``make bench``) to print. Run alone:

    python -m bench.analyzers [--n 128] [--repeats 3] [--batch 64]

Analyzers: ``language`` (lingua, detector only), ``entities`` (spaCy NER), ``shared``
(encoder + heads, one forward pass per message) and ``enricher`` (the whole pipeline,
as the worker calls it). One that cannot load reports its error instead of numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

#: Realistic chat messages (English plus a few other languages, short and long, friendly
#: and hostile, with names/places), cycled to the sample size.
SAMPLE: tuple[str, ...] = (
    "hey everyone, raid starts at 9pm tonight, bring potions",
    "lol that was amazing 😂",
    "ok",
    "Does anyone know if the Berlin meetup is still happening on Saturday?",
    "you are honestly the worst teammate I have ever had, uninstall",
    "thanks so much for the help yesterday, it finally works!",
    "I moved from Paris to London last year to work at Google and I still miss the food.",
    "can someone review my PR? https://github.com/example/repo/pull/42",
    "¿Alguien quiere jugar esta noche?",
    "gg wp",
    "Je ne comprends pas pourquoi le serveur est si lent aujourd'hui.",
    "this update is trash and the devs clearly don't care about players",
    "Guten Morgen! Wer ist heute online?",
    "今日の配信、すごく楽しかったです！ありがとう",
    "Привет всем, кто играет сегодня вечером?",
    "shut up idiot nobody asked",
    "Quick reminder: the community call is on Thursday at 6pm UTC. Agenda: roadmap, "
    "moderation tools, and the new events channel. Please add questions to the doc.",
    "😂😂😂",
    "I think Alice from the design team said the release moved to next week",
    "honestly the best patch in years, the new map is gorgeous",
)


def sample(n: int) -> list[str]:
    """The first ``n`` messages of the cycled :data:`SAMPLE`."""
    return [SAMPLE[i % len(SAMPLE)] for i in range(n)]


def throughput(fn: Callable[[list[str]], Any], texts: Sequence[str], batch: int, repeats: int) -> list[float]:
    """msgs/s of ``fn`` over ``texts`` in chunks of ``batch``, once per repeat (after a warm-up)."""
    fn(list(texts[: max(1, batch)]))  # warm-up: lazy init, allocator
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, len(texts), batch):
            fn(list(texts[start : start + batch]))
        rates.append(len(texts) / (time.perf_counter() - t0))
    return rates


def _analyzers(settings) -> list[tuple[str, Callable[[], Callable[[list[str]], Any]]]]:
    def language():
        from enrichment_ai.analysis.language import make_detector

        return make_detector(settings).load().detect

    def entities():
        from enrichment_ai.analysis.entities import SpacyEntities

        ner = SpacyEntities(settings).load()
        return lambda texts: ner.extract(texts, ["en"] * len(texts))

    def shared():
        from enrichment_ai.analysis.shared import SharedEncoderAnalyzer

        return SharedEncoderAnalyzer(settings).load().analyze

    def enricher():
        from enrichment_ai.pipeline import Enricher

        return Enricher(settings).load().enrich_batch

    return [("language", language), ("entities", entities), ("shared", shared), ("enricher", enricher)]


def run(n: int = 128, repeats: int = 3, batch: int = 64, settings=None, only: Sequence[str] | None = None) -> list[dict]:
    """Rows: analyzer, batch_size, msgs_per_s (median), repeats, ratio_vs_batch1 (or error)."""
    from enrichment_ai.config import Settings

    settings = settings or Settings()
    texts = sample(n)
    rows: list[dict] = []
    for name, build in _analyzers(settings):
        if only and name not in only:
            continue
        try:
            fn = build()
        except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the rest
            rows.append({"bench": "analyzers", "analyzer": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        base = None
        for bs in (1, batch):
            rates = throughput(fn, texts, bs, repeats)
            med = statistics.median(rates)
            base = base or med
            rows.append(
                {
                    "bench": "analyzers",
                    "analyzer": name,
                    "batch_size": bs,
                    "n": n,
                    "msgs_per_s": round(med, 1),
                    "repeats": [round(r, 1) for r in rates],
                    "ratio_vs_batch1": round(med / base, 2),
                }
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain table."""
    lines = [f"{'analyzer':<10} {'batch':>5} {'msgs/s (median)':>16} {'x batch 1':>9}  repeats"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['analyzer']:<10} error: {r['error']}")
        else:
            lines.append(
                f"{r['analyzer']:<10} {r['batch_size']:>5} {r['msgs_per_s']:>16.1f} {r['ratio_vs_batch1']:>9.2f}  {r['repeats']}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.analyzers``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--only", default=None, help="comma-separated analyzer names")
    args = p.parse_args(argv)
    only = args.only.split(",") if args.only else None
    print(format_rows(run(args.n, args.repeats, args.batch, only=only)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
