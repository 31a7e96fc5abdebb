"""Plain data types that cross module boundaries (no I/O, no heavy imports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Message:
    """A platform message as the pipeline reads it."""

    id: UUID
    channel_id: UUID
    server_id: UUID | None
    author_id: UUID
    content: str | None
    created_at: datetime
    deleted: bool = False
    author_bot: bool = False
    #: what the platform knows about the text's language (the language-id prior)
    server_locale: str | None = None
    author_locale: str | None = None
    #: language codes of the channel's most recent analysed messages, newest first
    channel_languages: tuple[str, ...] = ()
    #: the server's ``validated_languages_only`` (scores only where validated; analysis/coverage.py)
    validated_only: bool = False


@dataclass(frozen=True, slots=True)
class Entity:
    """A named entity: character offsets into the analysed text."""

    text: str
    label: str
    start: int
    end: int


@dataclass(slots=True)
class Analysis:
    """One message's enrichment. Scores are None where no model supports the text
    (its language, say); ``skipped``/``reason`` then say why."""

    language: str
    language_confidence: float
    sentiment: float | None = None
    sentiment_label: str | None = None
    toxicity: float | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    model_version: str = ""
    skipped: bool = False
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: the message embedding of the shared encoder's pass (numpy float32, L2-normalised),
    #: None where the encoder did not run; stored for summaries, not part of the JSON
    embedding: Any = field(default=None, repr=False, compare=False)
    #: the space of ``embedding`` (which encoder + adapter made it; stored beside it)
    embedding_model: str | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``enrichment-ai analyze`` (without the embedding)."""
        emb, self.embedding = self.embedding, None
        try:
            out = asdict(self)
        finally:
            self.embedding = emb
        out.pop("embedding", None)
        out.pop("embedding_model", None)
        return out
