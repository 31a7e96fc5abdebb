"""Which languages get scores, and on what evidence (validated on labelled data, or transferred).

A heads artifact trained on a multilingual encoder scores every language its encoder
covers, but only some of them were measured. Its card carries a ``coverage`` block,
written by ``enrichment-ai train`` (and refreshed by ``enrichment-ai eval --update-card``)
from the val metrics, per language and per head group (:data:`GROUPS`):

- ``validated``: a labelled val set in that language exists and its official metric
  reaches the group's floor (:data:`FLOORS`; English: the TweetEval/TweetTopicXL vals
  the heads were designed on);
- ``transferred``: no labelled data in that language (zero-shot through the encoder),
  or a val set below the floor (the evidence then says so).

Every scored row says which (``details["coverage"]``: group -> status); a server with
``server_enrichment_settings.validated_languages_only`` gets NULL for the transferred
groups, with a reason. An artifact without a ``coverage`` block (the English MiniLM
heads) covers English only, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VALIDATED, TRANSFERRED = "validated", "transferred"
#: head group -> the heads (``Analysis.scores`` keys) it stands for
GROUPS: dict[str, tuple[str, ...]] = {
    "sentiment": ("sentiment",),
    "toxicity": ("offensive", "hate", "toxicity"),
    "emotion": ("emotion",),
    "irony": ("irony",),
    "topics": ("topics",),
}
#: lowest val metric (official metric of the set, 0-1) that makes a language validated:
#: sentiment is 3-class (chance 0.33); the toxicity floor is the issue's 70 target
FLOORS: dict[str, float] = {"sentiment": 0.60, "toxicity": 0.70}
#: XLM-R's 100 training languages (Conneau et al. 2020, ISO 639-1 where one exists) —
#: what multilingual-e5-small's tokenizer and pretraining cover
XLMR_LANGUAGES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "hu", "hy", "id",
    "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml",
    "mn", "mr", "ms", "my", "nb", "ne", "nl", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk", "ur", "uz", "vi",
    "xh", "yi", "zh",
)  # fmt: skip
#: TweetTopicXL folder -> ISO 639-1
TOPIC_LANG_CODES = {"en": "en", "es": "es", "gr": "el", "ja": "ja"}


def build_coverage(metrics: Mapping[str, Mapping[str, Any]], encoder_languages: tuple[str, ...] | list[str],
                   extra_sets: Mapping[str, tuple[str, str, str]]) -> dict[str, Any]:
    """The card's ``coverage`` block from val metrics (``{set name: {"value", "n", ...}}``:
    TweetEval sets named by task, the others by :data:`~enrichment_ai.training.data.EXTRA_SETS`
    name, whose entries give (head task, language, metric))."""
    languages: dict[str, dict[str, str]] = {}
    evidence: dict[str, dict[str, str]] = {}
    for lang in encoder_languages:
        languages[lang] = {g: TRANSFERRED for g in GROUPS}
        evidence[lang] = {}
    languages["en"] = {g: VALIDATED for g in GROUPS}
    evidence.setdefault("en", {})["all"] = "TweetEval val (every head), TweetTopicXL en validation"
    for name, m in metrics.items():
        if name not in extra_sets:
            continue
        task, lang, metric = extra_sets[name]
        group = "toxicity" if task in GROUPS["toxicity"] else task
        value = float(m["value"])
        floor = FLOORS.get(group, 1.0)
        languages.setdefault(lang, {g: TRANSFERRED for g in GROUPS})
        ok = value >= floor
        if lang != "en":
            languages[lang][group] = VALIDATED if ok else TRANSFERRED
        evidence.setdefault(lang, {})[group] = (f"{name} val {metric} {100 * value:.1f} (n={m.get('n')}); "
                                                f"floor {100 * floor:.0f}: {'met' if ok else 'NOT met, treated as transferred'}")
    return {"statuses": [VALIDATED, TRANSFERRED], "floors": FLOORS, "languages": languages, "evidence": evidence,
            "note": "validated = labelled val data in that language at or above the floor; transferred = "
                    "scored through the multilingual encoder without (or below) that evidence"}


def row_coverage(coverage: Mapping[str, Any] | None, lang: str) -> dict[str, str] | None:
    """``{group: status}`` for one language (None when the artifact has no coverage block)."""
    if not coverage:
        return None
    row = coverage.get("languages", {}).get(lang)
    return dict(row) if row is not None else {g: TRANSFERRED for g in GROUPS}


def transferred_groups(row: Mapping[str, str] | None) -> list[str]:
    """The groups of a row's coverage that are not validated."""
    return [g for g, s in (row or {}).items() if s != VALIDATED]
