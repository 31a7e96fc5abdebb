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
    return Split(split.task, [split.texts[i] for i in idx], split.labels[idx])


def load_topics(data_dir: Path, split: str, lang: str = "en") -> tuple[list[str], list[str], np.ndarray]:
    """TweetTopicXL: (texts, topic names in file order, (n, topics) 0/1 matrix)."""
    path = Path(data_dir) / "tweettopicxl" / lang / f"{lang}_{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = [k for k, v in rows[0].items() if k not in ("id", "text") and isinstance(v, int)]
    y = np.array([[int(r[k]) for k in names] for r in rows], dtype=np.int64)
    return [r["text"] for r in rows], names, y
