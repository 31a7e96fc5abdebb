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

Where the text alone is ambiguous (too few letters, low confidence), a caller may pass a
per-text :class:`~enrichment_ai.analysis.language_prior.LanguageHint` (server and author
locale, the channel's recent languages) as a prior; it never overrides a confident text
(see :meth:`LanguageDetector.detect`).

Defaults were chosen from ``enrichment-ai``'s own measurement
(:func:`enrichment_ai.training.langid_eval.evaluate_langid`, numbers in
``docs/models.md``): lingua in high-accuracy mode, models preloaded in ``load()``, the
31 web languages of :data:`enrichment_ai.config.WEB_LANGUAGES` as candidates.

Only the first :data:`DETECT_CHARS` characters of a text are looked at: enough for any
language decision, and it bounds the cost of a 200 kB paste.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import NamedTuple

from enrichment_ai.analysis.language_prior import LanguageHint, combine, prior
from enrichment_ai.analysis.text import letter_weight, safe_str, strip_chat_noise
from enrichment_ai.config import Settings

#: Undetermined language (ISO 639-2 ``und``).
UND = "und"
#: Characters of a text the detectors read.
DETECT_CHARS = 2000

ERR_NOT_LOADED = "{name}: call load() before detect()"
ERR_UNKNOWN_CANDIDATE = "{name}: language candidate(s) {codes} not supported; it knows {known}"
ERR_HINTS_LENGTH = "{name}: {n} hints for {m} texts (give one hint or None per text)"


class LanguageGuess(NamedTuple):
    """One text's language: an ISO 639-1 code (or ``und``) and a confidence in 0..1.

    ``source`` is ``"text"`` when the text decided, ``"prior"`` when the platform's hint
    decided an otherwise ambiguous text (the confidence is then the posterior).
    """

    code: str
    confidence: float
    source: str = "text"


class LanguageDetector:
    """Base: candidate handling, the ``und`` rules and batching; subclasses score texts.

    Construct cheap, :meth:`load` explicitly, then :meth:`detect` batches of texts.
    """

    name = "language"
    #: Bumped when the rules (not the library) change. 2: the platform prior.
    rules_version = 2
    #: The prior may name only a language the text scores at least this fraction of its
    #: own top candidate (chosen by langid_eval's prior sweep, docs/models.md).
    PRIOR_MIN_RATIO = 0.4

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
        self.prior_weight = settings.language_prior_weight
        self.prior_min_letters = settings.language_prior_min_letters
        self.prior_min_ratio = self.PRIOR_MIN_RATIO
        self._loaded = False

    @property
    def version(self) -> str:
        """Short identifier for ``model_version``: library, mode and rule thresholds."""
        return (
            f"{self._library_version()}-k{len(self.candidates)}-c{self.min_confidence:g}-l{self.min_letters}"
            f"-p{self.prior_weight:g}x{self.prior_min_letters}-r{self.rules_version}"
        )

    def _library_version(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def load(self) -> LanguageDetector:
        """Build the underlying detector (reads its language models)."""
        self._load()
        self._loaded = True
        return self

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _distributions(self, texts: list[str]) -> list[dict[str, float]]:  # pragma: no cover
        """Candidate -> probability per (cleaned, non-trivial) text, best first."""
        raise NotImplementedError

    def detect(
        self, texts: Sequence[str], hints: Sequence[LanguageHint | None] | None = None
    ) -> list[LanguageGuess]:
        """One :class:`LanguageGuess` per text, same order; never raises for one text.

        ``hints`` (optional, one per text or ``None``) are what the platform knows about
        each text (:mod:`enrichment_ai.analysis.language_prior`). A hint is used only
        where the text alone is ambiguous — fewer than ``min_letters`` letters (but at
        least ``prior_min_letters``) or a top confidence below ``min_confidence``: then
        a language the hint names is taken if the text scores it at least
        :attr:`PRIOR_MIN_RATIO` of its own top candidate and its posterior (text scores
        x prior, :func:`~enrichment_ai.analysis.language_prior.combine`) reaches
        ``min_confidence`` (``source="prior"``). A text confident on its own keeps its
        own answer whatever the hint says.
        """
        if not self._loaded:
            raise RuntimeError(ERR_NOT_LOADED.format(name=type(self).__name__))
        if hints is not None and len(hints) != len(texts):
            raise ValueError(ERR_HINTS_LENGTH.format(name=type(self).__name__, n=len(hints), m=len(texts)))
        out: list[LanguageGuess] = [LanguageGuess(UND, 0.0)] * len(texts)
        todo: list[tuple[int, int, dict[str, float]]] = []  # (index, letters, prior)
        cleaned: list[str] = []
        for i, text in enumerate(texts):
            clean = strip_chat_noise(safe_str(text or "")[:DETECT_CHARS])
            letters = letter_weight(clean)
            hint_prior = prior(hints[i], self.candidates) if hints is not None and self.prior_weight > 0 else {}
            if letters >= self.min_letters or (hint_prior and letters >= self.prior_min_letters and letters > 0):
                todo.append((i, letters, hint_prior))
                cleaned.append(clean)
        if not todo:
            return out
        try:
            dists = self._distributions(cleaned)
        except Exception:  # one bad text must not sink the batch: retry one by one
            dists = [self._distribution_one_safely(t) for t in cleaned]
        for (i, letters, hint_prior), dist in zip(todo, dists):
            out[i] = self._decide(dist, letters, hint_prior)
        return out

    def _decide(self, dist: dict[str, float], letters: int, hint_prior: dict[str, float]) -> LanguageGuess:
        dist = {k: min(1.0, max(0.0, float(v))) for k, v in dist.items() if k != UND}
        code, conf = max(dist.items(), key=lambda kv: kv[1]) if dist else (UND, 0.0)
        if letters >= self.min_letters and code != UND and conf >= self.min_confidence:
            return LanguageGuess(code, conf)
        text_conf = conf if letters >= self.min_letters else 0.0
        # the prior may only pick a language it names and the text finds plausible: at
        # least PRIOR_MIN_RATIO of the text's own top score ("danke dir" in an en-US
        # server stays 'und', "same here" becomes 'en'); the posterior is its confidence
        plausible = {k: v for k, v in dist.items() if hint_prior.get(k, 0.0) > 0 and v >= self.prior_min_ratio * conf}
        if plausible:
            post = combine(dist, hint_prior, len(self.candidates), self.prior_weight)
            p_code = max(plausible, key=lambda k: post.get(k, 0.0))
            p_conf = post.get(p_code, 0.0)
            if p_conf >= self.min_confidence:
                return LanguageGuess(p_code, min(1.0, p_conf), "prior")
        return LanguageGuess(UND, text_conf)

    def _distribution_one_safely(self, text: str) -> dict[str, float]:
        try:
            return self._distributions([text])[0]
        except Exception:
            return {}


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

    def _distributions(self, texts: list[str]) -> list[dict[str, float]]:
        # One text at a time, not ``compute_language_confidence_values_in_parallel``: that
        # runs on rayon's global thread pool, which does not survive fork — a pool process
        # forked from a worker that loaded the models (workers/context.py) hangs in it
        # forever. Measured: 200 chat texts take 16 ms one by one vs 13 ms in parallel;
        # whole enrich_batch over the e2e mix (batches of 64, 2 cores, median of 3) 94 vs
        # 100 msgs/s — the price of sharing lingua's ~700 MB between pool processes and of
        # replacing a dead one in 0.3 s. With -c 2 on 2 cores there is no spare core anyway.
        detect = self._detector.compute_language_confidence_values
        return [{v.language.iso_code_639_1.name.lower(): v.value for v in detect(t) if v.value > 0.0} for t in texts]


class LangdetectDetector(LanguageDetector):
    """langdetect (port of Google's language-detection), restricted to the candidates.

    Uses its own ``DetectorFactory`` instance (not the library's module global) with a
    fixed seed, so results are deterministic and nothing global is mutated. Candidates
    are enforced through a prior map that gives other languages zero prior.
    """

    name = "language.langdetect.v1"
    SEED = 0
    #: langdetect's codes that differ from the candidates' (Norwegian: lingua and the
    #: candidates say ``nb``, langdetect ``no``)
    _ALIASES = {"zh-cn": "zh", "zh-tw": "zh", "no": "nb"}

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

    def _distributions(self, texts: list[str]) -> list[dict[str, float]]:
        from langdetect.lang_detect_exception import LangDetectException

        out: list[dict[str, float]] = []
        for text in texts:
            det = self._factory.create()
            det.set_prior_map(dict(self._prior))
            det.append(text)
            try:
                probs = det.get_probabilities()
            except LangDetectException:
                out.append({})
                continue
            merged: dict[str, float] = {}
            for p in probs:
                code = self._ALIASES.get(p.lang, p.lang)
                merged[code] = merged.get(code, 0.0) + p.prob
            out.append(merged)
        return out


def make_detector(settings: Settings, **kw) -> LanguageDetector:
    """The detector ``Settings.language_detector`` names (not loaded)."""
    if settings.language_detector == "langdetect":
        return LangdetectDetector(settings, **kw)
    return LinguaDetector(settings, **kw)
