"""Sentence spans of a message (character offsets), for per-sentence toxicity.

A deliberately simple, dependency-free splitter for chat text: a sentence ends at
``.``, ``!``, ``?``, ``…`` (runs of them) followed by whitespace, or at a line break.
Spans are ``(start, end)`` into the original string, stripped of surrounding spaces.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Non-empty sentence spans covering ``text`` in order ([] for blank text)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        _add(text, pos, m.start(), spans)
        pos = m.end()
    _add(text, pos, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
