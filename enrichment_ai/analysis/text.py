"""Text hygiene shared by the analyzers: sanitising, chat-noise stripping, letter counts.

Pure functions, no state. Every analyzer must survive arbitrary Python ``str`` input
(lone surrogates, control characters, 200 kB pastes); these helpers make that cheap.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: URLs, e-mail addresses, Discord-style mentions/channels/custom emoji, @user handles,
#: and :shortcode: emoji. Stripped before language identification: they carry no language.
#: The e-mail part excludes "@" from both sides: ``\S+@\S+\.\w+`` backtracked cubically on a
#: long run such as "a@a@a@…" (0.74 s for 2,000 characters, a batch of them ~48 s).
_NOISE = re.compile(
    r"https?://\S+|www\.\S+|[^\s@]+@[^\s@]+\.\w+|<a?:\w+:\d+>|<[@#][!&]?\d+>|@\w+|:[a-z0-9_+-]+:",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")

# Scripts whose single characters carry about a word's worth of information.
_DENSE_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0x20000, 0x2FA1F),  # CJK Extensions B.., compatibility supplement
)
#: How many "letters" one ideograph/kana/hangul syllable counts as in :func:`letter_weight`.
DENSE_SCRIPT_WEIGHT = 3


@dataclass(frozen=True, slots=True)
class Sanitized:
    """A cleaned text and what was done to it (for ``Analysis.details``)."""

    text: str
    replaced_surrogates: int = 0
    removed_controls: int = 0
    truncated_from: int | None = None

    @property
    def notes(self) -> dict[str, int]:
        """Only the changes that happened, ready for a details dict."""
        out: dict[str, int] = {}
        if self.replaced_surrogates:
            out["replaced_surrogates"] = self.replaced_surrogates
        if self.removed_controls:
            out["removed_control_chars"] = self.removed_controls
        if self.truncated_from is not None:
            out["truncated_from_chars"] = self.truncated_from
        return out


def _is_dropped_control(ch: str) -> bool:
    # Keep ordinary whitespace (tab, newline, CR); drop other C0/C1 controls and NUL.
    return ch not in "\t\n\r" and unicodedata.category(ch) == "Cc"


def sanitize(text: str, max_chars: int | None = None) -> Sanitized:
    """Return ``text`` as valid UTF-8 without control characters, cut to ``max_chars``.

    Lone surrogates (which cannot be encoded, so would crash tokenizers and Rust
    extensions) become U+FFFD, control characters a space: both one-for-one, so every
    character offset into the cleaned text (entities, the toxicity span) is the same
    offset into the message's own text. Truncation happens on the cleaned text.
    """
    surrogates = sum(1 for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
    if surrogates:
        text = safe_str(text)
    controls = sum(1 for ch in text if _is_dropped_control(ch))
    if controls:
        text = "".join(" " if _is_dropped_control(ch) else ch for ch in text)
    truncated_from = None
    if max_chars is not None and len(text) > max_chars:
        truncated_from = len(text)
        text = text[:max_chars]
    return Sanitized(text, surrogates, controls, truncated_from)


def safe_str(text: str) -> str:
    """Cheap guard for analyzers: replace lone surrogates with U+FFFD so the text can be
    encoded. One-for-one, so character offsets into the original stay valid."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def strip_chat_noise(text: str) -> str:
    """Remove URLs, mentions, custom emoji and collapse whitespace."""
    return _SPACES.sub(" ", _NOISE.sub(" ", text)).strip()


def _is_dense(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _DENSE_RANGES)


def letter_weight(text: str) -> int:
    """Count letters, an ideograph/kana/hangul syllable counting :data:`DENSE_SCRIPT_WEIGHT`.

    Digits, punctuation, symbols and emoji count 0, so ``"😂"`` and ``"12345"`` weigh 0.
    """
    total = 0
    for ch in text:
        if ch.isalpha():
            total += DENSE_SCRIPT_WEIGHT if _is_dense(ch) else 1
    return total


def has_letters(text: str) -> bool:
    """True if any character is a letter (in any script)."""
    return any(ch.isalpha() for ch in text)
