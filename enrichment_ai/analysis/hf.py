"""Hugging Face backend: any ``AutoModelForSequenceClassification`` checkpoint per task.

For deployments that have bigger fine-tuned models. ``Settings.hf_models`` maps a task
(``sentiment``, ``toxicity``, ``offensive``, ``hate``, ``emotion``, ``irony`` …) to a local
path or hub id; ``Settings.hf_label_maps[task]`` maps the checkpoint's labels
(``config.id2label``, e.g. ``LABEL_0``) to ours (e.g. ``negative``); unmapped labels keep
the checkpoint's name. Probabilities are a softmax over labels, or per-label sigmoids when
the checkpoint's ``problem_type`` is ``multi_label_classification``; labels that map to
the same name are summed.

Shaped like a Hugging Face pipeline without its input-dependent returns: preprocess
(length-sorted batches, tokenise) → forward (the only code that touches the device,
under ``torch.inference_mode``) → postprocess (one ``{label: prob}`` per text, in order).
How the pipeline uses the result: see :mod:`enrichment_ai.pipeline` (the task's
probabilities replace that head's output).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from enrichment_ai.analysis.text import safe_str
from enrichment_ai.config import Settings

ERR_NOT_LOADED = "{name}: call load() before predict()"


def pick_device(setting: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class HFSequenceClassifier:
    """One checkpoint: ``predict(texts) -> list[dict[label, prob]]`` by our label names."""

    def __init__(
        self,
        model_id: str,
        label_map: Mapping[str, str] | None = None,
        *,
        device: str = "auto",
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        self.model_id = model_id
        self.label_map = dict(label_map or {})
        self.device_setting = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._tokenizer = None
        self._labels: list[str] = []
        self._multi_label = False
        self.device = "cpu"

    def load(self) -> HFSequenceClassifier:
        """Read tokenizer and weights (local path, or the hub where one is reachable)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = pick_device(self.device_setting)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_id)
        model.eval().to(self.device)
        id2label = model.config.id2label
        self._labels = [self.label_map.get(str(id2label[i]), str(id2label[i])) for i in range(len(id2label))]
        self._multi_label = model.config.problem_type == "multi_label_classification"
        tok_max = getattr(self._tokenizer, "model_max_length", self.max_length) or self.max_length
        pos_max = getattr(model.config, "max_position_embeddings", self.max_length) or self.max_length
        self.max_length = min(self.max_length, tok_max, pos_max)
        self._model = model
        return self

    @property
    def labels(self) -> list[str]:
        """Our label names, in the checkpoint's output order (may repeat)."""
        return list(self._labels)

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probabilities by label for each text, same order; batched and length-sorted."""
        if self._model is None:
            raise RuntimeError(ERR_NOT_LOADED.format(name=f"HFSequenceClassifier({self.model_id})"))
        clean = [safe_str(t or "") for t in texts]
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
        out: list[dict[str, float]] = [{} for _ in clean]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            probs = self._forward([clean[i] for i in idx])
            for i, row in zip(idx, probs):
                out[i] = self._postprocess(row)
        return out

    def _forward(self, batch: list[str]) -> list[list[float]]:
        import torch

        enc = self._tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logits = self._model(**enc).logits.float()
            probs = torch.sigmoid(logits) if self._multi_label else torch.softmax(logits, dim=-1)
        return probs.cpu().tolist()

    def _postprocess(self, row: list[float]) -> dict[str, float]:
        merged: dict[str, float] = {}
        for label, p in zip(self._labels, row):
            merged[label] = merged.get(label, 0.0) + float(p)
        return {k: min(1.0, max(0.0, v)) for k, v in merged.items()}


class HFBackend:
    """Every task in ``Settings.hf_models``: ``predict(texts) -> list[{task: {label: p}}]``."""

    name = "hf.v1"

    def __init__(self, settings: Settings, *, batch_size: int | None = None) -> None:
        self.models = dict(settings.hf_models)
        self.label_maps = {k: dict(v) for k, v in settings.hf_label_maps.items()}
        self.languages = frozenset(settings.hf_languages)
        bs = batch_size or min(settings.encoder_batch_size, 32)
        self._classifiers = {
            task: HFSequenceClassifier(mid, self.label_maps.get(task), device=settings.device, batch_size=bs)
            for task, mid in self.models.items()
        }
        self._loaded = False

    @property
    def tasks(self) -> list[str]:
        """Configured tasks, sorted."""
        return sorted(self.models)

    @property
    def version(self) -> str:
        """``hf-<8 hex>`` over the configured checkpoints and label maps ('' if none)."""
        if not self.models:
            return ""
        blob = json.dumps([self.models, self.label_maps, sorted(self.languages)], sort_keys=True)
        return "hf-" + hashlib.sha256(blob.encode()).hexdigest()[:8]

    def load(self) -> HFBackend:
        """Load every configured checkpoint."""
        for clf in self._classifiers.values():
            clf.load()
        self._loaded = True
        return self

    def predict(self, texts: Sequence[str]) -> list[dict[str, dict[str, float]]]:
        """One ``{task: {label: prob}}`` per text, same order."""
        if not self._loaded:
            raise RuntimeError(ERR_NOT_LOADED.format(name="HFBackend"))
        per_task = {task: clf.predict(texts) for task, clf in self._classifiers.items()}
        return [{task: per_task[task][i] for task in self.tasks} for i in range(len(texts))]
