"""Measure language identification: accuracy per language and mode, and the ``und`` rate.

Data: ``<data_dir>`` laid out like ``../shared/datasets/langid`` — ``word-pairs/`` and
``sentences/``, one item per line, file name = ISO 639-1 gold label. Two small
hand-written chat sets sit beside it in this module: :data:`CHAT_NOISE` (text that has
no language; the right answer is ``und``) and :data:`CHAT_SHORT` (short but clear
messages, which must *not* become ``und``).

Every detector is run once with the ``und`` rules off, so the rule thresholds can be
swept offline (``sweep`` in the report) and the configured ones reported as ``subsets``.
Accuracy counts ``und`` as wrong; ``und_rate`` is reported beside it.

    python -m enrichment_ai.training.langid_eval ../shared/datasets/langid [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enrichment_ai.analysis.language import UND, LangdetectDetector, LanguageDetector, LinguaDetector
from enrichment_ai.analysis.text import letter_weight, strip_chat_noise
from enrichment_ai.config import Settings

SUBSETS = ("word-pairs", "sentences")
DETECTORS = ("lingua-high", "lingua-low", "langdetect")

#: Chat messages with no determinable language: correct answer ``und``.
CHAT_NOISE: tuple[str, ...] = (
    "ok", "ok lol", "lol", "lmao", "gg", "xD", "hmm", "haha", "hahaha", "k", "kk", "ty", "np",
    "brb", "mmm", "ahh", "uhh", "+1", "???", "!!!", "...", "12345", "10/10", "😂", "😂😂😂",
    "👍", "❤️🔥", "https://example.com/x", "@user", "<@123456789>", "<:pepe:123456>", ":)",
    "xd lol", "ok ok", "gg wp", "lol ok", "hm?", "ye", "nah", "oof",
)  # fmt: skip

#: Short but clear chat messages with their language: must not become ``und``.
CHAT_SHORT: tuple[tuple[str, str], ...] = (
    ("thank you so much", "en"), ("see you tomorrow", "en"), ("where are you?", "en"),
    ("this is great", "en"), ("muchas gracias", "es"), ("nos vemos mañana", "es"),
    ("¿dónde estás?", "es"), ("merci beaucoup", "fr"), ("à demain les amis", "fr"),
    ("c'est génial", "fr"), ("vielen Dank", "de"), ("bis morgen", "de"),
    ("wo bist du?", "de"), ("muito obrigado", "pt"), ("até amanhã", "pt"),
    ("grazie mille", "it"), ("ci vediamo domani", "it"), ("спасибо большое", "ru"),
    ("до завтра", "ru"), ("ありがとう", "ja"), ("また明日", "ja"), ("谢谢你", "zh"),
    ("明天见", "zh"), ("شكرا جزيلا", "ar"), ("أراك غدا", "ar"),
    # single short words: what the minimum-letters rule costs
    ("hello", "en"), ("thanks", "en"), ("hola", "es"), ("gracias", "es"), ("merci", "fr"),
    ("bonjour", "fr"), ("danke", "de"), ("tschüss", "de"), ("obrigado", "pt"), ("ciao", "it"),
    ("grazie", "it"), ("привет", "ru"), ("こんにちは", "ja"), ("你好", "zh"), ("مرحبا", "ar"),
)  # fmt: skip

SWEEP_CONFIDENCE = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_LETTERS = (0, 3, 4, 5, 6, 8)


def load_items(data_dir: Path, subset: str, limit: int | None = None) -> list[tuple[str, str]]:
    """``(text, gold)`` pairs of one subset, files in name order, first ``limit`` per language."""
    items: list[tuple[str, str]] = []
    folder = Path(data_dir) / subset
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: expected {SUBSETS} folders under {data_dir}")
    for path in sorted(folder.glob("*.txt")):
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        lines = [ln for ln in lines if ln][:limit]
        items.extend((ln, path.stem) for ln in lines)
    return items


def _make(name: str, settings: Settings) -> LanguageDetector:
    # Rules off: raw top candidate for every text; rules are applied in _apply.
    raw = {"min_confidence": 0.0, "min_letters": 0}
    if name == "lingua-high":
        return LinguaDetector(settings, low_accuracy=False, **raw)
    if name == "lingua-low":
        return LinguaDetector(settings, low_accuracy=True, **raw)
    if name == "langdetect":
        return LangdetectDetector(settings, **raw)
    raise ValueError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")


def _apply(code: str, conf: float, letters: int, min_conf: float, min_letters: int) -> str:
    return UND if letters < min_letters or conf < min_conf or code == UND else code


def _score_subset(preds, golds, letters, min_conf, min_letters) -> dict[str, Any]:
    per: dict[str, dict[str, float]] = {}
    for (code, conf), gold, n_letters in zip(preds, golds, letters):
        got = _apply(code, conf, n_letters, min_conf, min_letters)
        row = per.setdefault(gold, {"n": 0, "correct": 0, "und": 0})
        row["n"] += 1
        row["correct"] += got == gold
        row["und"] += got == UND
    langs = {
        g: {"n": r["n"], "accuracy": round(r["correct"] / r["n"], 4), "und_rate": round(r["und"] / r["n"], 4)}
        for g, r in sorted(per.items())
    }
    total = sum(r["n"] for r in per.values()) or 1
    return {
        "per_language": langs,
        "mean_accuracy": round(sum(v["accuracy"] for v in langs.values()) / max(1, len(langs)), 4),
        "und_rate": round(sum(r["und"] for r in per.values()) / total, 4),
    }


def evaluate_langid(
    data_dir: str | Path,
    detectors: Sequence[str] = DETECTORS,
    *,
    settings: Settings | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Run each named detector over the langid data and the chat sets; return a report.

    ``report["detectors"][name]`` has ``version``, ``load_s``, ``texts_per_s``,
    ``subsets`` (word-pairs, sentences, chat_short: per-language accuracy and und rate at
    the configured thresholds), ``chat_noise_und_rate``, and ``sweep`` (the same numbers
    for a grid of ``min_confidence`` x ``min_letters``).
    """
    settings = settings or Settings()
    data: dict[str, list[tuple[str, str]]] = {s: load_items(Path(data_dir), s, limit) for s in SUBSETS}
    data["chat_short"] = list(CHAT_SHORT)
    noise = list(CHAT_NOISE)
    report: dict[str, Any] = {
        "data_dir": str(data_dir),
        "candidates": list(settings.language_candidates),
        "configured": {
            "min_confidence": settings.language_min_confidence,
            "min_letters": settings.language_min_letters,
        },
        "n": {k: len(v) for k, v in data.items()} | {"chat_noise": len(noise)},
        "detectors": {},
    }
    for name in detectors:
        det = _make(name, settings)
        t0 = time.perf_counter()
        det.load()
        load_s = time.perf_counter() - t0
        raw: dict[str, list[tuple[str, float]]] = {}
        n_texts, t_detect = 0, 0.0
        for subset, items in list(data.items()) + [("chat_noise", [(t, UND) for t in noise])]:
            texts = [t for t, _ in items]
            t0 = time.perf_counter()
            raw[subset] = list(det.detect(texts))
            t_detect += time.perf_counter() - t0
            n_texts += len(texts)
        letters = {s: [letter_weight(strip_chat_noise(t)) for t, _ in items] for s, items in data.items()}
        noise_letters = [letter_weight(strip_chat_noise(t)) for t in noise]
        golds = {s: [g for _, g in items] for s, items in data.items()}

        def at(min_conf: float, min_letters: int) -> dict[str, Any]:
            subsets = {s: _score_subset(raw[s], golds[s], letters[s], min_conf, min_letters) for s in data}
            noise_und = sum(
                _apply(c, p, n, min_conf, min_letters) == UND for (c, p), n in zip(raw["chat_noise"], noise_letters)
            ) / len(noise)
            return {"subsets": subsets, "chat_noise_und_rate": round(noise_und, 4)}

        configured = at(settings.language_min_confidence, settings.language_min_letters)
        sweep = []
        for mc in SWEEP_CONFIDENCE:
            for ml in SWEEP_LETTERS:
                r = at(mc, ml)
                sweep.append(
                    {
                        "min_confidence": mc,
                        "min_letters": ml,
                        **{f"{s}_accuracy": r["subsets"][s]["mean_accuracy"] for s in data},
                        **{f"{s}_und_rate": r["subsets"][s]["und_rate"] for s in data},
                        "chat_noise_und_rate": r["chat_noise_und_rate"],
                    }
                )
        report["detectors"][name] = {
            "version": det.version,
            "load_s": round(load_s, 3),
            "texts_per_s": round(n_texts / t_detect, 1) if t_detect else None,
            **configured,
            "noise_predictions": {t: f"{c}:{p:.2f}" for t, (c, p) in zip(noise, raw["chat_noise"])},
            "sweep": sweep,
        }
    return report


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables: accuracy per language (word-pairs / sentences) per detector."""
    names = list(report["detectors"])
    cfg = report["configured"]
    lines = [f"min_confidence={cfg['min_confidence']} min_letters={cfg['min_letters']}; accuracy (und counts wrong)", ""]
    for subset in ("word-pairs", "sentences", "chat_short"):
        langs = sorted(report["detectors"][names[0]]["subsets"][subset]["per_language"])
        lines.append(f"### {subset}")
        lines.append("| lang | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for lang in langs:
            cells = []
            for n in names:
                r = report["detectors"][n]["subsets"][subset]["per_language"][lang]
                cells.append(f"{100 * r['accuracy']:.1f} (und {100 * r['und_rate']:.1f})")
            lines.append(f"| {lang} | " + " | ".join(cells) + " |")
        means = [f"**{100 * report['detectors'][n]['subsets'][subset]['mean_accuracy']:.1f}**" for n in names]
        unds = [f"{100 * report['detectors'][n]['subsets'][subset]['und_rate']:.1f}" for n in names]
        lines.append("| mean | " + " | ".join(means) + " |")
        lines.append("| und rate | " + " | ".join(unds) + " |")
        lines.append("")
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    lines.append("| chat noise -> und | " + " | ".join(f"{100 * report['detectors'][n]['chat_noise_und_rate']:.1f}" for n in names) + " |")
    lines.append("| load s | " + " | ".join(str(report["detectors"][n]["load_s"]) for n in names) + " |")
    lines.append("| texts/s | " + " | ".join(str(report["detectors"][n]["texts_per_s"]) for n in names) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the tables; ``--json`` writes the whole report (with the sweep)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--detectors", default=",".join(DETECTORS))
    p.add_argument("--limit", type=int, default=None, help="items per language and subset")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    report = evaluate_langid(args.data_dir, args.detectors.split(","), limit=args.limit)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
