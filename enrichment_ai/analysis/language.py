"""Language identification: lingua (default) or langdetect, with an honest ``und``.

Both detectors choose among ``Settings.language_candidates`` (ISO 639-1) and return one
:class:`LanguageGuess` ``(code, confidence)`` per text, in order. Chat is full of text
that carries no language ("ok lol", "😂", "gg", a bare URL); rather than a confident
wrong code such text gets ``und`` with a low confidence. Two rules decide it:

* **minimum letters** – after stripping URLs/mentions/custom emoji, the text must have at
  least ``Settings.language_min_letters`` letters (an ideograph, kana or hangul syllable
  counts 3, see :func:`enrichment_ai.analysis.text.letter_weight`); otherwise ``und``
  with confidence 0.
* **minimum confidence** – the top candidate's probability (lingua: its relative
  confidence among the candidates; langdetect: its posterior) must reach
  ``Settings.language_min_confidence``; otherwise ``und`` carrying that low top value.

Defaults were chosen from ``enrichment-ai``'s own measurement
(:func:`enrichment_ai.training.langid_eval.evaluate_langid`, numbers in
``docs/models.md``): lingua in high-accuracy mode, models preloaded in ``load()``.

Only the first :data:`DETECT_CHARS` characters of a text are looked at: enough for any
language decision, and it bounds the cost of a 200 kB paste.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import NamedTuple

from enrichment_ai.analysis.text import letter_weight, safe_str, strip_chat_noise
from enrichment_ai.config import Settings

#: Undetermined language (ISO 639-2 ``und``).
UND = "und"
#: Characters of a text the detectors read.
DETECT_CHARS = 2000

ERR_NOT_LOADED = "{name}: call load() before detect()"
ERR_UNKNOWN_CANDIDATE = "{name}: language candidate(s) {codes} not supported; it knows {known}"


class LanguageGuess(NamedTuple):
    """One text's language: an ISO 639-1 code (or ``und``) and a confidence in 0..1."""

    code: str
    confidence: float


class LanguageDetector:
    """Base: candidate handling, the ``und`` rules and batching; subclasses score texts.

    Construct cheap, :meth:`load` explicitly, then :meth:`detect` batches of texts.
    """

    name = "language"
    #: Bumped when the rules (not the library) change.
    rules_version = 1

    def __init__(
        self,
        settings: Settings,
        *,
        min_confidence: float | None = None,
        min_letters: int | None = None,
    ) -> None:
        self.candidates: tuple[str, ...] = tuple(dict.fromkeys(c.lower() for c in settings.language_candidates))
        self.min_confidence = settings.language_min_confidence if min_confidence is None else min_confidence
        self.min_letters = settings.language_min_letters if min_letters is None else min_letters
        self._loaded = False

    @property
    def version(self) -> str:
        """Short identifier for ``model_version``: library, mode and rule thresholds."""
        return f"{self._library_version()}-c{self.min_confidence:g}-l{self.min_letters}-r{self.rules_version}"

    def _library_version(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def load(self) -> LanguageDetector:
        """Build the underlying detector (reads its language models)."""
        self._load()
        self._loaded = True
        return self

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score(self, texts: list[str]) -> list[tuple[str, float]]:  # pragma: no cover
        """Top candidate and its probability per (cleaned, non-trivial) text."""
        raise NotImplementedError

    def detect(self, texts: Sequence[str]) -> list[LanguageGuess]:
        """One :class:`LanguageGuess` per text, same order; never raises for one text."""
        if not self._loaded:
            raise RuntimeError(ERR_NOT_LOADED.format(name=type(self).__name__))
        out: list[LanguageGuess] = [LanguageGuess(UND, 0.0)] * len(texts)
        todo: list[int] = []
        cleaned: list[str] = []
        for i, text in enumerate(texts):
            clean = strip_chat_noise(safe_str(text or "")[:DETECT_CHARS])
            if letter_weight(clean) >= self.min_letters:
                todo.append(i)
                cleaned.append(clean)
        if not todo:
            return out
        try:
            scored = self._score(cleaned)
        except Exception:  # one bad text must not sink the batch: retry one by one
            scored = [self._score_one_safely(t) for t in cleaned]
        for i, (code, conf) in zip(todo, scored):
            conf = min(1.0, max(0.0, float(conf)))
            out[i] = LanguageGuess(code, conf) if code != UND and conf >= self.min_confidence else LanguageGuess(UND, conf)
        return out

    def _score_one_safely(self, text: str) -> tuple[str, float]:
        try:
            return self._score([text])[0]
        except Exception:
            return (UND, 0.0)


class LinguaDetector(LanguageDetector):
    """lingua-py: n-gram models up to 5-grams (high accuracy) or trigrams only (low).

    ``preload=True`` reads every candidate's models in :meth:`load` (about a second and
    a few hundred MB for 14 languages in high-accuracy mode) so that the first batch a
    worker sees is not slow; ``low_accuracy=True`` uses far less memory and time but is
    much weaker on short text (see docs/models.md).
    """

    name = "language.lingua.v1"

    def __init__(self, settings: Settings, *, low_accuracy: bool | None = None, preload: bool = True, **kw) -> None:
        super().__init__(settings, **kw)
        self.low_accuracy = settings.language_accuracy == "low" if low_accuracy is None else low_accuracy
        self.preload = preload
        self._detector = None

    def _library_version(self) -> str:
        mode = "low" if self.low_accuracy else "high"
        return f"lingua{metadata.version('lingua-language-detector')}-{mode}"

    def _load(self) -> None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes, unknown = [], []
        for c in self.candidates:
            try:
                codes.append(IsoCode639_1.from_str(c))
            except Exception:
                unknown.append(c)
        if unknown:
            known = sorted(i.name.lower() for i in IsoCode639_1.all()) if hasattr(IsoCode639_1, "all") else "lingua's"
            raise ValueError(ERR_UNKNOWN_CANDIDATE.format(name=self.name, codes=unknown, known=known))
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        if self.low_accuracy:
            builder = builder.with_low_accuracy_mode()
        if self.preload:
            builder = builder.with_preloaded_language_models()
        self._detector = builder.build()

    def _score(self, texts: list[str]) -> list[tuple[str, float]]:
        results = self._detector.compute_language_confidence_values_in_parallel(texts)
        out: list[tuple[str, float]] = []
        for values in results:
            if not values or values[0].value <= 0.0:
                out.append((UND, 0.0))
            else:
                top = values[0]
                out.append((top.language.iso_code_639_1.name.lower(), top.value))
        return out


class LangdetectDetector(LanguageDetector):
    """langdetect (port of Google's language-detection), restricted to the candidates.

    Uses its own ``DetectorFactory`` instance (not the library's module global) with a
    fixed seed, so results are deterministic and nothing global is mutated. Candidates
    are enforced through a prior map that gives other languages zero prior.
    """

    name = "language.langdetect.v1"
    SEED = 0
    _ALIASES = {"zh-cn": "zh", "zh-tw": "zh"}

    def __init__(self, settings: Settings, **kw) -> None:
        super().__init__(settings, **kw)
        self._factory = None
        self._prior: dict[str, float] | None = None

    def _library_version(self) -> str:
        return f"langdetect{metadata.version('langdetect')}"

    def _load(self) -> None:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.set_seed(self.SEED)
        known = factory.get_lang_list()
        prior = {lang: 1.0 for lang in known if self._ALIASES.get(lang, lang) in self.candidates}
        unknown = [c for c in self.candidates if c not in {self._ALIASES.get(k, k) for k in known}]
        if unknown:
            raise ValueError(ERR_UNKNOWN_CANDIDATE.format(name=self.name, codes=unknown, known=sorted(known)))
        self._factory, self._prior = factory, prior

    def _score(self, texts: list[str]) -> list[tuple[str, float]]:
        from langdetect.lang_detect_exception import LangDetectException

        out: list[tuple[str, float]] = []
        for text in texts:
            det = self._factory.create()
            det.set_prior_map(dict(self._prior))
            det.append(text)
            try:
                probs = det.get_probabilities()
            except LangDetectException:
                out.append((UND, 0.0))
                continue
            merged: dict[str, float] = {}
            for p in probs:
                code = self._ALIASES.get(p.lang, p.lang)
                merged[code] = merged.get(code, 0.0) + p.prob
            if not merged:
                out.append((UND, 0.0))
            else:
                code, prob = max(merged.items(), key=lambda kv: kv[1])
                out.append((code, prob))
        return out


def make_detector(settings: Settings, **kw) -> LanguageDetector:
    """The detector ``Settings.language_detector`` names (not loaded)."""
    if settings.language_detector == "langdetect":
        return LangdetectDetector(settings, **kw)
    return LinguaDetector(settings, **kw)
