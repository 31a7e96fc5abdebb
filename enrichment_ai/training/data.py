"""Readers for the training/validation data under ``../shared/datasets`` (never copied here).

``load_task(data_dir, task, split)`` -> :class:`Split` (texts + integer labels) for a
TweetEval task; ``load_topics(data_dir, split, lang)`` -> texts, topic names and a
0/1 matrix for TweetTopicXL. ``sample(split, n, seed)`` takes a fixed random subset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TASKS: tuple[str, ...] = ("sentiment", "offensive", "hate", "emotion", "irony")


@dataclass
class Split:
    """Aligned texts and labels of one task split."""

    task: str
    texts: list[str]
    labels: np.ndarray
    lang: str = "en"
    #: per-row language when several sets were joined (:func:`concat`)
    langs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def load_task(data_dir: Path, task: str, split: str) -> Split:
    """Read ``tweeteval/<task>/<split>_text.txt`` and ``<split>_labels.txt``."""
    base = Path(data_dir) / "tweeteval" / task
    if not base.is_dir():
        raise FileNotFoundError(f"{base} not found: pass the shared datasets folder, e.g. --data ../shared/datasets")
    texts = _read_lines(base / f"{split}_text.txt")
    labels = [int(x) for x in _read_lines(base / f"{split}_labels.txt") if x.strip()]
    if len(texts) != len(labels):
        raise ValueError(f"{task}/{split}: {len(texts)} texts but {len(labels)} labels")
    return Split(task, [t.strip() for t in texts], np.asarray(labels, dtype=np.int64))


def sample(split: Split, n: int | None, seed: int) -> Split:
    """At most ``n`` examples, drawn with a fixed seed (all when n is None or larger)."""
    if n is None or n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), size=n, replace=False))
    return Split(split.task, [split.texts[i] for i in idx], split.labels[idx], split.lang)


def load_topics(data_dir: Path, split: str, lang: str = "en") -> tuple[list[str], list[str], np.ndarray]:
    """TweetTopicXL: (texts, topic names in file order, (n, topics) 0/1 matrix)."""
    path = Path(data_dir) / "tweettopicxl" / lang / f"{lang}_{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    # es/ja store the 0/1 labels as floats (0.0/1.0)
    names = [k for k, v in rows[0].items() if k not in ("id", "text") and isinstance(v, (int, float))]
    y = np.array([[int(r[k]) for k in names] for r in rows], dtype=np.int64)
    return [r["text"] for r in rows], names, y


# -- beyond English (../shared/datasets/multilingual, tweettopicxl es/gr/ja) -----------------

#: UMSAB folder -> ISO 639-1 code
UMSAB: dict[str, str] = {"arabic": "ar", "english": "en", "french": "fr", "german": "de", "hindi": "hi",
                         "italian": "it", "portuguese": "pt", "spanish": "es"}  # fmt: skip
#: labelled sets beyond TweetEval: name -> (the head it trains, language, official metric)
EXTRA_SETS: dict[str, tuple[str, str, str]] = {
    **{f"umsab-{code}": ("sentiment", code, "macro_f1") for code in UMSAB.values()},
    "germeval-de": ("offensive", "de", "average_f"),  # GermEval 2018 coarse, OFFENSE = 1
    "told-br-pt": ("offensive", "pt", "macro_f1"),  # ToLD-Br, toxic = 1
}
#: TweetTopicXL languages (same 19-topic taxonomy)
TOPIC_LANGS: tuple[str, ...] = ("en", "es", "gr", "ja")
#: share of GermEval 2018's only file held out for validation (seeded)
GERMEVAL_VAL = 0.2


def holdout_seed(heads_path: Path) -> int:
    """The seed of the GermEval share an artifact held out (its card's ``train_config.seed``;
    0 when the card says none). GermEval's val is carved out of its only file by that seed,
    so an artifact trained with ``--seed 1`` trained on most of seed 0's held-out rows: every
    figure about an artifact (eval, recalibration) must use the split it held out."""
    from enrichment_ai.analysis.heads import read_card

    return int(read_card(Path(heads_path)).get("train_config", {}).get("seed", 0))


def load_extra(data_dir: Path, name: str, split: str, seed: int = 0) -> Split:
    """One of :data:`EXTRA_SETS` as a :class:`Split` of its head's task (``split``: train/val).

    UMSAB files have no final newline (their README); GermEval has no validation split, so
    a seeded :data:`GERMEVAL_VAL` share of its train file is held out; ToLD-Br is CSV
    (texts may contain newlines)."""
    import csv
    import random

    task, lang, _ = EXTRA_SETS[name]
    ml = Path(data_dir) / "multilingual"
    if not ml.is_dir():
        raise FileNotFoundError(f"{ml} not found: pass the shared datasets folder, e.g. --data ../shared/datasets")
    if name.startswith("umsab-"):
        folder = next(k for k, v in UMSAB.items() if v == lang)
        d = ml / "umsab" / folder
        texts = (d / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
        labels = [int(x) for x in (d / f"{split}_labels.txt").read_text(encoding="utf-8").split("\n") if x.strip()]
    elif name == "germeval-de":
        rows = [ln.split("\t") for ln in (ml / "germeval2018" / "germeval2018.training.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        rows = [(r[0].replace("|LBR|", "\n"), int(r[1] == "OFFENSE")) for r in rows]
        random.Random(seed).shuffle(rows)
        cut = int((1 - GERMEVAL_VAL) * len(rows))
        rows = rows[:cut] if split == "train" else rows[cut:]
        texts, labels = [r[0] for r in rows], [r[1] for r in rows]
    else:
        fname = "ptbr_train_1annotator.csv" if split == "train" else "ptbr_validation_1annotator.csv"
        with open(ml / "told-br" / fname, encoding="utf-8", newline="") as fh:
            rows = [(r["text"], int(float(r["toxic"]))) for r in csv.DictReader(fh)]
        texts, labels = [r[0] for r in rows], [r[1] for r in rows]
    if len(texts) != len(labels):
        raise ValueError(f"{name}/{split}: {len(texts)} texts but {len(labels)} labels")
    return Split(task, [t.strip() for t in texts], np.asarray(labels, dtype=np.int64), lang)


def text_key(text: str) -> str:
    """What train and val texts are compared by: lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())


def without_texts(split: Split, keys: set[str]) -> tuple[Split, int]:
    """``split`` without the rows whose :func:`text_key` is in ``keys``, and how many went."""
    keep = [i for i, t in enumerate(split.texts) if text_key(t) not in keys]
    if len(keep) == len(split):
        return split, 0
    langs = [split.langs[i] for i in keep] if split.langs is not None else None
    return Split(split.task, [split.texts[i] for i in keep], split.labels[keep], split.lang, langs), len(split) - len(keep)


def concat(task: str, parts: list[Split]) -> Split:
    """Several splits of one task as one (language kept per row in ``langs``)."""
    return Split(task, [t for p in parts for t in p.texts], np.concatenate([p.labels for p in parts]),
                 "mul", [p.lang for p in parts for _ in p.texts])
