"""Measure language identification: accuracy, ``und`` rate, memory and speed per configuration.

A configuration is a detector (``lingua-high``, ``lingua-low``, ``langdetect``) and a
candidate set (``v1-14``: the 14 languages of the first release; ``web-31``: the default,
``Settings.language_candidates``; ``all``: every language the library knows). Each runs
in a fresh (spawned) process, so its resident memory after ``load()`` is its own.

Data: ``<data_dir>`` laid out like ``../shared/datasets/langid`` — ``word-pairs/`` and
``sentences/``, one item per line, file name = ISO 639-1 gold label (10 languages) —
plus the hand-written chat sets of :mod:`enrichment_ai.training.langid_chat`
(``chat_short``, ``chat_messages``: 31 languages; ``chat_noise``: no language, the
right answer is ``und``) and, when found, real tweets: UMSAB val (``tweets``, 7
languages; its Hindi is romanised and reported apart as ``tweets_hi_latn``).

Accuracy counts ``und`` as wrong; ``und_rate`` is reported beside it. Every detector
is also run once with the ``und`` rules off, so thresholds can be swept offline
(``sweep`` in the JSON). The prior experiment (:func:`prior_experiment`) measures the
platform prior on the default configuration.

    python -m enrichment_ai.training.langid_eval ../shared/datasets/langid [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enrichment_ai.analysis.language import UND, LangdetectDetector, LanguageDetector, LinguaDetector
from enrichment_ai.analysis.language_prior import LanguageHint
from enrichment_ai.analysis.text import letter_weight, strip_chat_noise
from enrichment_ai.config import Settings
from enrichment_ai.training.langid_chat import CHAT_MESSAGES, CHAT_NOISE, CHAT_SHORT

SUBSETS = ("word-pairs", "sentences")
DETECTORS = ("lingua-high", "lingua-low", "langdetect")
V1_CANDIDATES = ("en", "es", "fr", "de", "pt", "it", "ru", "ja", "zh", "ar", "nl", "pl", "tr", "ko")
#: (detector, candidate set) pairs measured by default
CONFIGS = (("lingua-high", "v1-14"), ("lingua-high", "web-31"), ("lingua-high", "all"),
           ("lingua-low", "web-31"), ("langdetect", "web-31"), ("langdetect", "all"))  # fmt: skip
UMSAB_LANGS = {"arabic": "ar", "english": "en", "french": "fr", "german": "de", "hindi": "hi",
               "italian": "it", "portuguese": "pt", "spanish": "es"}  # fmt: skip
SWEEP_CONFIDENCE = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_LETTERS = (0, 3, 4, 5, 6, 8)

__all__ = ["CHAT_MESSAGES", "CHAT_NOISE", "CHAT_SHORT", "evaluate_langid", "format_report", "prior_experiment"]


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


def load_tweets(umsab_dir: Path, limit: int | None = 200) -> dict[str, list[tuple[str, str]]]:
    """UMSAB val tweets as ``{"tweets": [...], "tweets_hi_latn": [...]}`` (empty if absent)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for folder, code in UMSAB_LANGS.items():
        path = Path(umsab_dir) / folder / "val_text.txt"
        if not path.is_file():
            continue
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        key = "tweets_hi_latn" if code == "hi" else "tweets"
        out.setdefault(key, []).extend((ln, code) for ln in [x for x in lines if x][:limit])
    return out


def candidates_for(detector: str, name: str) -> list[str]:
    """The codes of candidate set ``name`` for ``detector`` (``all`` = the library's)."""
    if name == "v1-14":
        return list(V1_CANDIDATES)
    if name == "web-31":
        return list(Settings().language_candidates)
    if name != "all":
        raise ValueError(f"unknown candidate set {name!r}; known: v1-14, web-31, all")
    if detector.startswith("lingua"):
        from lingua import Language

        return sorted(lang.iso_code_639_1.name.lower() for lang in Language.all())
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    return sorted({LangdetectDetector._ALIASES.get(c, c) for c in factory.get_lang_list()})


def _make(name: str, settings: Settings, **rules) -> LanguageDetector:
    if name == "lingua-high":
        return LinguaDetector(settings, low_accuracy=False, **rules)
    if name == "lingua-low":
        return LinguaDetector(settings, low_accuracy=True, **rules)
    if name == "langdetect":
        return LangdetectDetector(settings, **rules)
    raise ValueError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")


def _apply(code: str, conf: float, letters: int, min_conf: float, min_letters: int) -> str:
    return UND if letters < min_letters or conf < min_conf or code == UND else code


def _score_subset(preds, golds, letters, min_conf, min_letters) -> dict[str, Any]:
    per: dict[str, dict[str, float]] = {}
    for (code, conf, *_), gold, n_letters in zip(preds, golds, letters):
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
    wrong = sum(r["n"] - r["correct"] - r["und"] for r in per.values())
    return {
        "per_language": langs,
        "mean_accuracy": round(sum(v["accuracy"] for v in langs.values()) / max(1, len(langs)), 4),
        "und_rate": round(sum(r["und"] for r in per.values()) / total, 4),
        "wrong_rate": round(wrong / total, 4),  # a language was named, and it was the wrong one
    }


def _rss_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _datasets(data_dir: Path, limit: int | None, tweets_dir: Path | None) -> dict[str, list[tuple[str, str]]]:
    data = {s: load_items(Path(data_dir), s, limit) for s in SUBSETS}
    data["chat_short"] = list(CHAT_SHORT)
    data["chat_messages"] = list(CHAT_MESSAGES)
    if tweets_dir is not None:
        data.update(load_tweets(tweets_dir, limit or 200))
    return data


def run_config(detector: str, candidate_set: str, data_dir: str, limit: int | None = None,
               tweets_dir: str | None = None, settings: Settings | None = None) -> dict[str, Any]:  # fmt: skip
    """One configuration over every subset (run it in a fresh process for a clean RSS)."""
    base = settings or Settings()
    settings = base.model_copy(update={"language_candidates": candidates_for(detector, candidate_set)})
    data = _datasets(Path(data_dir), limit, Path(tweets_dir) if tweets_dir else None)
    noise = list(CHAT_NOISE)
    det = _make(detector, settings, min_confidence=0.0, min_letters=0)  # rules applied offline
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    det.load()
    load_s = time.perf_counter() - t0
    raw: dict[str, list] = {}
    n_texts, t_detect = 0, 0.0
    for subset, items in list(data.items()) + [("chat_noise", [(t, UND) for t in noise])]:
        texts = [t for t, _ in items]
        t0 = time.perf_counter()
        raw[subset] = list(det.detect(texts))
        t_detect += time.perf_counter() - t0
        n_texts += len(texts)
    rss1 = _rss_mb()
    letters = {s: [letter_weight(strip_chat_noise(t)) for t, _ in items] for s, items in data.items()}
    noise_letters = [letter_weight(strip_chat_noise(t)) for t in noise]
    golds = {s: [g for _, g in items] for s, items in data.items()}

    def at(min_conf: float, min_letters: int) -> dict[str, Any]:
        subsets = {s: _score_subset(raw[s], golds[s], letters[s], min_conf, min_letters) for s in data}
        noise_und = sum(
            _apply(c, p, n, min_conf, min_letters) == UND for (c, p, *_), n in zip(raw["chat_noise"], noise_letters)
        ) / len(noise)
        return {"subsets": subsets, "chat_noise_und_rate": round(noise_und, 4)}

    sweep = []
    for mc in SWEEP_CONFIDENCE:
        for ml in SWEEP_LETTERS:
            r = at(mc, ml)
            sweep.append({"min_confidence": mc, "min_letters": ml,
                          **{f"{s}_accuracy": r["subsets"][s]["mean_accuracy"] for s in data},
                          **{f"{s}_und_rate": r["subsets"][s]["und_rate"] for s in data},
                          **{f"{s}_wrong_rate": r["subsets"][s]["wrong_rate"] for s in data},
                          "chat_noise_und_rate": r["chat_noise_und_rate"]})  # fmt: skip
    return {
        "detector": detector,
        "candidate_set": candidate_set,
        "n_candidates": len(settings.language_candidates),
        "version": det.version,
        "load_s": round(load_s, 3),
        "rss_mb": round(rss1 - rss0, 1),
        "texts_per_s": round(n_texts / t_detect, 1) if t_detect else None,
        "n": {k: len(v) for k, v in data.items()} | {"chat_noise": len(noise)},
        **at(base.language_min_confidence, base.language_min_letters),
        "noise_predictions": {t: f"{c}:{p:.2f}" for t, (c, p, *_) in zip(noise, raw["chat_noise"])},
        "sweep": sweep,
    }


def evaluate_langid(
    data_dir: str | Path,
    detectors: Sequence[str] = DETECTORS,
    *,
    settings: Settings | None = None,
    limit: int | None = None,
    configs: Sequence[tuple[str, str]] | None = None,
    tweets_dir: str | Path | None = None,
    isolate: bool = True,
    prior: bool = True,
) -> dict[str, Any]:
    """Run each configuration (default: ``detectors`` x ``web-31``, or ``configs``); a report.

    ``report["detectors"]["<detector>/<set>"]`` has ``version``, ``load_s``, ``rss_mb``
    (resident memory added by ``load()`` and detection), ``texts_per_s``, ``subsets``
    (per-language accuracy and ``und`` rate at the configured thresholds),
    ``chat_noise_und_rate`` and ``sweep``. ``isolate`` runs each in a spawned process.
    ``report["prior"]`` is :func:`prior_experiment` on the configured detector.
    """
    settings = settings or Settings()
    if tweets_dir is None:
        guess = Path(data_dir).parent / "multilingual" / "umsab"
        tweets_dir = guess if guess.is_dir() else None
    configs = list(configs or [(d, "web-31") for d in detectors])
    report: dict[str, Any] = {
        "data_dir": str(data_dir),
        "tweets_dir": str(tweets_dir) if tweets_dir else None,
        "candidates": list(settings.language_candidates),
        "configured": {"min_confidence": settings.language_min_confidence, "min_letters": settings.language_min_letters},
        "detectors": {},
    }
    args = [(d, c, str(data_dir), limit, str(tweets_dir) if tweets_dir else None) for d, c in configs]
    if isolate:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            results = pool.starmap(run_config, args)
    else:
        results = [run_config(*a, settings=settings) for a in args]
    for r in results:
        report["detectors"][f"{r['detector']}/{r['candidate_set']}"] = r
    report["n"] = results[0]["n"] if results else {}
    if prior:
        report["prior"] = prior_experiment(data_dir, settings=settings, tweets_dir=tweets_dir, limit=limit)
    return report


def short_english(tweeteval_dir: Path, max_words: int = 6, limit: int = 400) -> list[str]:
    """Short English tweets (at most ``max_words`` words after URLs/mentions are stripped)."""
    out: list[str] = []
    for task in ("sentiment", "emotion", "offensive", "irony", "hate"):
        path = Path(tweeteval_dir) / task / "val_text.txt"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            clean = strip_chat_noise(line.replace("@user", " "))
            if clean and len(clean.split()) <= max_words and letter_weight(clean) >= 1:
                out.append(line.strip())
    return list(dict.fromkeys(out))[:limit]


def prior_experiment(
    data_dir: str | Path,
    *,
    settings: Settings | None = None,
    tweets_dir: str | Path | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The platform prior's effect on the configured detector.

    * ``short_en``: short English chat (hand-written chat_short/chat_messages ``en`` rows
      and TweetEval val tweets of at most 6 words) with an ``en`` author+server locale:
      accuracy and ``und`` rate without and with the hint;
    * ``wrong_prior``: every non-English item (sentences, chat sets, tweets) with an
      ``en`` hint: accuracy without/with, and ``overridden`` — items the text alone got
      right that the hint turned into another language;
    * ``noise``: chat noise with an ``en`` hint (how much of it the prior names ``en``);
    * ``right_prior``: non-English chat (chat_short + chat_messages) hinted with its own
      language: accuracy and ``und`` rate without/with.
    """
    settings = settings or Settings()
    det = _make("lingua-high" if settings.language_detector == "lingua" else "langdetect", settings).load()
    tweeteval = Path(data_dir).parent / "tweeteval"
    en_short = [t for t, g in CHAT_SHORT + CHAT_MESSAGES if g == "en"] + short_english(tweeteval)
    en_hint = LanguageHint(server_locale="en-US", author_locale="en-US")
    data = _datasets(Path(data_dir), limit, Path(tweets_dir) if tweets_dir else None)
    foreign = [(t, g) for s in ("sentences", "chat_short", "chat_messages", "tweets") for t, g in data.get(s, []) if g != "en"]

    def run(texts: list[str], hints) -> list:
        return det.detect(texts, hints)

    def stats(guesses, golds) -> dict[str, float]:
        n = max(1, len(golds))
        return {"accuracy": round(sum(g.code == y for g, y in zip(guesses, golds)) / n, 4),
                "und_rate": round(sum(g.code == UND for g in guesses) / n, 4),
                "by_prior": round(sum(g.source == "prior" for g in guesses) / n, 4)}  # fmt: skip

    out: dict[str, Any] = {"detector": det.version}
    before, after = run(en_short, None), run(en_short, [en_hint] * len(en_short))
    out["short_en"] = {"n": len(en_short), "no_hint": stats(before, ["en"] * len(en_short)),
                       "en_hint": stats(after, ["en"] * len(en_short))}  # fmt: skip
    texts, golds = [t for t, _ in foreign], [g for _, g in foreign]
    before, after = run(texts, None), run(texts, [en_hint] * len(texts))
    overridden = sum(b.code == y and a.code != y for b, a, y in zip(before, after, golds))
    out["wrong_prior"] = {"n": len(texts), "no_hint": stats(before, golds), "en_hint": stats(after, golds),
                          "overridden": overridden,
                          "confident_overridden": sum(b.code == y and b.confidence >= det.min_confidence and a.code != y
                                                      for b, a, y in zip(before, after, golds))}  # fmt: skip
    noise = list(CHAT_NOISE)
    after = run(noise, [en_hint] * len(noise))
    out["noise"] = {"n": len(noise), "en_hint_und_rate": round(sum(g.code == UND for g in after) / len(noise), 4),
                    "named_en": [t for t, g in zip(noise, after) if g.code != UND]}  # fmt: skip
    own = [(t, g) for t, g in CHAT_SHORT + CHAT_MESSAGES if g != "en"]
    texts, golds = [t for t, _ in own], [g for _, g in own]
    hints = [LanguageHint(author_locale=g, channel_languages=(g, g, "en")) for g in golds]
    out["right_prior"] = {"n": len(texts), "no_hint": stats(run(texts, None), golds),
                          "own_hint": stats(run(texts, hints), golds)}  # fmt: skip
    return out


def format_report(report: dict[str, Any]) -> str:
    """Markdown: one summary row per configuration, then per-language accuracy tables."""
    names = list(report["detectors"])
    cfg = report["configured"]
    dets = report["detectors"]
    subsets = [s for s in ("word-pairs", "sentences", "chat_short", "chat_messages", "tweets", "tweets_hi_latn")
               if s in dets[names[0]]["subsets"]]  # fmt: skip
    lines = [f"min_confidence={cfg['min_confidence']} min_letters={cfg['min_letters']}; "
             "mean accuracy over languages (und counts wrong), und rate in brackets", ""]  # fmt: skip
    lines.append("| configuration | k | " + " | ".join(subsets) + " | noise->und | load s | RSS MB | texts/s |")
    lines.append("|---|---|" + "---|" * (len(subsets) + 4))
    for n in names:
        d = dets[n]
        cells = [f"{100 * d['subsets'][s]['mean_accuracy']:.1f} ({100 * d['subsets'][s]['und_rate']:.1f})" for s in subsets]
        lines.append(f"| {n} | {d.get('n_candidates', '')} | " + " | ".join(cells)
                     + f" | {100 * d['chat_noise_und_rate']:.1f} | {d['load_s']} | {d.get('rss_mb', '')} | {d['texts_per_s']} |")  # fmt: skip
    for subset in subsets:
        langs = sorted(dets[names[0]]["subsets"][subset]["per_language"])
        lines += ["", f"### {subset}", "| lang | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for lang in langs:
            cells = []
            for n in names:
                r = dets[n]["subsets"][subset]["per_language"].get(lang)
                cells.append("-" if r is None else f"{100 * r['accuracy']:.0f} ({100 * r['und_rate']:.0f})")
            lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    if report.get("prior"):
        p = report["prior"]
        lines += ["", f"### platform prior ({p['detector']})", "| set | n | no hint: acc / und | with hint: acc / und / by prior |",
                  "|---|---|---|---|"]  # fmt: skip
        for key, hint in (("short_en", "en_hint"), ("wrong_prior", "en_hint"), ("right_prior", "own_hint")):
            r = p[key]
            a, b = r["no_hint"], r[hint]
            lines.append(f"| {key} ({hint}) | {r['n']} | {100 * a['accuracy']:.1f} / {100 * a['und_rate']:.1f} | "
                         f"{100 * b['accuracy']:.1f} / {100 * b['und_rate']:.1f} / {100 * b['by_prior']:.1f} |")  # fmt: skip
        lines.append(f"\nwrong (en) prior overrode {p['wrong_prior']['overridden']} text-correct items "
                     f"({p['wrong_prior']['confident_overridden']} of them confident); chat noise with an en hint: "
                     f"und {100 * p['noise']['en_hint_und_rate']:.1f}% (named en: {', '.join(p['noise']['named_en'][:12])})")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the tables; ``--json`` writes the whole report (with the sweep)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--configs", default=",".join(f"{d}/{c}" for d, c in CONFIGS),
                   help="detector/candidate-set pairs, e.g. lingua-high/web-31,langdetect/all")  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="items per language and subset")
    p.add_argument("--tweets-dir", type=Path, default=None, help="UMSAB folder (default: ../multilingual/umsab)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    configs = [tuple(c.split("/", 1)) for c in args.configs.split(",")]
    report = evaluate_langid(args.data_dir, limit=args.limit, configs=configs, tweets_dir=args.tweets_dir)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
