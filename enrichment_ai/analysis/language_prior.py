"""A language prior from what the platform knows about where a text was written.

Short chat ("lol same", "gg wp", "ok merci") carries too little text for a confident
language decision, but the platform usually knows more: the server's
``preferred_locale``, the author's ``locale`` and the languages of the channel's recent
messages. :class:`LanguageHint` carries those per text; :func:`prior` turns one into a
distribution over the detector's candidates that :class:`~enrichment_ai.analysis.language.LanguageDetector`
combines with the text's own scores **only where the text alone is ambiguous** (see
``LanguageDetector.detect``): a confident text is never overridden by its hint, so a
wrong locale (``users.locale`` defaults to ``en-US``) costs nothing on clear text.

Source weights (channel > author > server) reflect how specific each source is; a
missing source drops out and the rest are renormalised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Weight of each source in the prior, before renormalising over the present ones.
SOURCE_WEIGHTS = {"channel": 0.5, "author": 0.3, "server": 0.2}
#: Locale language subtags that are not the candidates' ISO 639-1 code.
LOCALE_ALIASES = {"no": "nb", "iw": "he", "in": "id", "ji": "yi", "fil": "tl", "zh-hans": "zh", "zh-hant": "zh"}


@dataclass(frozen=True, slots=True)
class LanguageHint:
    """What the platform knows about one text's context (every field optional).

    ``channel_languages`` are the language codes of the channel's recent analysed
    messages (``und`` entries are ignored), in any order; duplicates count as weight.
    """

    server_locale: str | None = None
    author_locale: str | None = None
    channel_languages: Sequence[str] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        """True if no source carries a usable language."""
        return not (
            locale_language(self.server_locale)
            or locale_language(self.author_locale)
            or any(locale_language(c) for c in self.channel_languages)
        )


def language_hint(message) -> LanguageHint:
    """The hint for a :class:`~enrichment_ai.types.Message` as ``store.fetch_messages`` loads it."""
    return LanguageHint(
        server_locale=getattr(message, "server_locale", None),
        author_locale=getattr(message, "author_locale", None),
        channel_languages=tuple(getattr(message, "channel_languages", ()) or ()),
    )


def locale_language(locale: str | None) -> str | None:
    """ISO 639-1-style language of a locale: ``"pt-BR"`` -> ``"pt"``, ``"no"`` -> ``"nb"``.

    ``None`` for empty or undetermined input (``und``, ``""``, non-strings).
    """
    if not isinstance(locale, str):
        return None
    tag = locale.strip().replace("_", "-").lower()
    if not tag or tag == "und":
        return None
    if tag in LOCALE_ALIASES:
        return LOCALE_ALIASES[tag]
    lang = tag.split("-", 1)[0]
    lang = LOCALE_ALIASES.get(lang, lang)
    return lang if lang.isalpha() and 2 <= len(lang) <= 3 else None


def prior(hint: LanguageHint | None, candidates: Iterable[str]) -> dict[str, float]:
    """The hint as a distribution over ``candidates`` (empty dict = no usable hint)."""
    if hint is None:
        return {}
    allowed = set(candidates)
    parts: list[tuple[float, dict[str, float]]] = []
    channel = Counter(c for c in (locale_language(x) for x in hint.channel_languages) if c in allowed)
    if channel:
        total = sum(channel.values())
        parts.append((SOURCE_WEIGHTS["channel"], {k: v / total for k, v in channel.items()}))
    for source, locale in (("author", hint.author_locale), ("server", hint.server_locale)):
        lang = locale_language(locale)
        if lang in allowed:
            parts.append((SOURCE_WEIGHTS[source], {lang: 1.0}))
    weight = sum(w for w, _ in parts)
    out: dict[str, float] = {}
    for w, dist in parts:
        for k, v in dist.items():
            out[k] = out.get(k, 0.0) + w * v / weight
    return out


def combine(
    text_scores: dict[str, float], hint_prior: dict[str, float], n_candidates: int, weight: float
) -> dict[str, float]:
    """Posterior over the candidates: text scores x ``(1-weight)/n + weight*prior``.

    The prior mixes a uniform part (``1-weight``) with the hint, so a language the hint
    does not name keeps a non-zero prior and a text that clearly is in it can still win.
    A language absent from ``text_scores`` (lingua gives 0 to a wrong script) stays 0.
    """
    uniform = (1.0 - weight) / max(1, n_candidates)
    raw = {k: p * (uniform + weight * hint_prior.get(k, 0.0)) for k, p in text_scores.items() if p > 0}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()} if total > 0 else {}
