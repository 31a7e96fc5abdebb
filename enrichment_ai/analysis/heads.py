"""Task heads on the shared embedding, and the artifact that ships them.

An artifact directory (``models/tweeteval-heads/``) holds:

- ``heads.safetensors``: per task ``<task>.weight`` (labels x dim) and ``<task>.bias``;
  ``toxicity.calibration`` (3 numbers, Platt: sigmoid(a*z_off + b*z_hate + c), z the heads'
  log-odds; or 7, Platt + tanh features: ``training/calibration.py``) and
  ``toxicity.calibration.<lang>`` per language; topic head tensors; the label names and adapter config in the
  safetensors metadata (so the weights file alone defines the model);
- ``adapter.safetensors`` (optional): LoRA tensors for the encoder;
- ``card.json`` / ``README.md``: description and metrics (not part of the version).

Heads take the L2-normalised mean-pooled embedding as input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# the artifact's files and identity live where a process without torch can read them
from enrichment_ai.analysis.artifact import (  # noqa: F401 - re-exported
    ADAPTER_FILE,
    CARD_FILE,
    HEADS_FILE,
    artifact_digest,
    read_card,
    write_card,
)

#: The TweetEval tasks and their label names, in label-id order.
TASK_LABELS: dict[str, list[str]] = {
    "sentiment": ["negative", "neutral", "positive"],
    "offensive": ["not-offensive", "offensive"],
    "hate": ["not-hate", "hate"],
    "emotion": ["anger", "joy", "optimism", "sadness"],
    "irony": ["non_irony", "irony"],
}


@dataclass
class Head:
    """A linear (softmax) classifier: ``logits = x @ weight.T + bias``."""

    labels: list[str]
    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a (n, dim) batch."""
        return x @ self.weight.t() + self.bias

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities, (n, labels)."""
        return torch.softmax(self.logits(x), dim=-1)


def _as_tanh_calibration(coef: torch.Tensor) -> torch.Tensor:
    """A stored calibration as the 7 numbers of the Platt + tanh form: a 3-number Platt
    vector [a, b, c] is the same function with zero tanh weights (older artifacts score
    exactly as before)."""
    coef = coef.float().reshape(-1)
    if coef.numel() == 7:
        return coef
    if coef.numel() == 3:
        return torch.cat([coef[:2], torch.zeros(4), coef[2:]])
    raise ValueError(f"a toxicity calibration has 3 or 7 numbers, not {coef.numel()}")


@dataclass
class Heads:
    """Every head of the artifact plus toxicity calibration and the adapter config."""

    heads: dict[str, Head]
    toxicity_calibration: torch.Tensor = field(default_factory=lambda: torch.tensor([1.0, 1.0, 0.0]))
    #: per-language coefficients where that language has labelled toxicity val data (the heads'
    #: log-odds are not equally calibrated across languages); other languages use the global one
    toxicity_calibration_by_language: dict[str, torch.Tensor] = field(default_factory=dict)
    topic_labels: list[str] = field(default_factory=list)
    topic_weight: torch.Tensor | None = None
    topic_bias: torch.Tensor | None = None
    topic_threshold: torch.Tensor | None = None
    adapter_config: dict[str, Any] | None = None
    adapter: dict[str, torch.Tensor] | None = None
    #: how texts were tokenized for training ("none", or ``symbols.SYMBOL_NAMES``):
    #: inference must do the same
    text_preprocessing: str = "none"

    # -- inference ----------------------------------------------------------------
    def log_odds(self, task: str, x: torch.Tensor) -> torch.Tensor:
        """log P(positive) - log P(negative) for a binary head, (n,)."""
        z = self.heads[task].logits(x)
        return z[:, 1] - z[:, 0]

    def toxicity(self, x: torch.Tensor, languages: "Sequence[str | None] | None" = None) -> torch.Tensor:
        """Calibrated P(toxic) from the offensive and hate heads, (n,); ``languages`` (one
        per row) picks :attr:`toxicity_calibration_by_language` where there is one."""
        glob = _as_tanh_calibration(self.toxicity_calibration)
        coef = glob.reshape(1, 7).expand(x.shape[0], 7)
        if languages is not None and self.toxicity_calibration_by_language:
            by = {k: _as_tanh_calibration(v) for k, v in self.toxicity_calibration_by_language.items()}
            coef = torch.stack([by.get(lang, glob) if lang else glob for lang in languages]).reshape(x.shape[0], 7)
        z = torch.stack([self.log_odds("offensive", x), self.log_odds("hate", x)], 1)
        feats = torch.cat([z, torch.tanh(z / 2), torch.tanh(z)], 1)
        return torch.sigmoid((feats * coef[:, :6]).sum(1) + coef[:, 6])

    def topic_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Independent per-topic probabilities, (n, topics)."""
        if self.topic_weight is None:
            return torch.zeros((x.shape[0], 0))
        return torch.sigmoid(x @ self.topic_weight.t() + self.topic_bias)

    # -- persistence --------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``heads.safetensors`` (+ ``adapter.safetensors`` when there is an adapter)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {"toxicity.calibration": self.toxicity_calibration.float()}
        for lang, coef in self.toxicity_calibration_by_language.items():
            tensors[f"toxicity.calibration.{lang}"] = coef.float()
        for task, head in self.heads.items():
            tensors[f"{task}.weight"] = head.weight.float()
            tensors[f"{task}.bias"] = head.bias.float()
        if self.topic_weight is not None:
            tensors["topics.weight"] = self.topic_weight.float()
            tensors["topics.bias"] = self.topic_bias.float()
            tensors["topics.threshold"] = self.topic_threshold.float()
        meta = {
            "labels": json.dumps({t: h.labels for t, h in self.heads.items()}),
            "topic_labels": json.dumps(self.topic_labels),
            "adapter_config": json.dumps(self.adapter_config),
        }
        if self.text_preprocessing != "none":  # absent = "none": artifacts from before the field keep their bytes
            meta["text_preprocessing"] = self.text_preprocessing
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(directory / HEADS_FILE), metadata=meta)
        adapter_path = directory / ADAPTER_FILE
        if self.adapter:
            save_file({k: v.detach().contiguous() for k, v in self.adapter.items()}, str(adapter_path))
        elif adapter_path.exists():
            adapter_path.unlink()

    @classmethod
    def load(cls, directory: Path) -> "Heads":
        """Read an artifact directory written by :meth:`save`."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        directory = Path(directory)
        path = directory / HEADS_FILE
        if not path.exists():
            raise FileNotFoundError(f"no {HEADS_FILE} in {directory}; run `enrichment-ai train`")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        labels = json.loads(meta["labels"])
        heads = {t: Head(labels[t], tensors[f"{t}.weight"], tensors[f"{t}.bias"]) for t in labels}
        adapter_path = directory / ADAPTER_FILE
        return cls(
            heads=heads,
            toxicity_calibration=tensors["toxicity.calibration"],
            toxicity_calibration_by_language={k.rsplit(".", 1)[1]: v for k, v in tensors.items()
                                              if k.startswith("toxicity.calibration.")},
            topic_labels=json.loads(meta.get("topic_labels", "[]")),
            topic_weight=tensors.get("topics.weight"),
            topic_bias=tensors.get("topics.bias"),
            topic_threshold=tensors.get("topics.threshold"),
            adapter_config=json.loads(meta.get("adapter_config", "null")),
            adapter=load_file(str(adapter_path)) if adapter_path.exists() else None,
            text_preprocessing=meta.get("text_preprocessing", "none"),
        )


