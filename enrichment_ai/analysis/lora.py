"""A small, dependency-free LoRA adapter for the shared encoder's linear layers.

``inject_lora(model, rank, alpha, targets)`` wraps matching ``nn.Linear`` modules in
:class:`LoRALinear` (base weight frozen, low-rank ``B @ A`` update trained).
``lora_state_dict(model)`` / ``load_lora_state_dict(model, state)`` move only the adapter
tensors, so the artifact stays a few hundred kilobytes. ``set_lora_enabled(model, False)``
gives the untouched base encoder back (used for semantic embeddings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
from torch import nn

#: Linear layers of a BERT-style encoder that get an adapter by default.
_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")
DEFAULT_TARGETS: tuple[str, ...] = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


class LoRALinear(nn.Module):
    """``y = base(x) + scale * (dropout(x) @ A^T) @ B^T``; ``B`` starts at zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.base(x)
        if self.enabled:
            out = out + (self.dropout(x) @ self.lora_a.t() @ self.lora_b.t()) * self.scale
        return out


def _matches(name: str, targets: Iterable[str]) -> bool:
    return any(name.endswith(t) for t in targets)


def inject_lora(
    model: nn.Module,
    rank: int,
    alpha: float,
    targets: Iterable[str] = DEFAULT_TARGETS,
    layers: Iterable[int] | None = None,
    dropout: float = 0.0,
) -> list[str]:
    """Wrap the matching linear layers of ``model`` in place; return their names.

    ``layers`` limits adapters to those encoder layer indices (None = all layers).
    """
    targets = tuple(targets)
    wanted = None if layers is None else {int(i) for i in layers}
    names: list[str] = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or not _matches(name, targets):
            continue
        found = _LAYER.search(name)
        if found is None:
            continue
        index = int(found.group(1))
        if wanted is not None and index not in wanted:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(module, rank, alpha, dropout))
        names.append(name)
    return names


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, detached and contiguous (safetensors-ready)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if ".lora_" in k}


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load adapter tensors into an injected model; every adapter key must match."""
    own = {k for k in model.state_dict() if ".lora_" in k}
    missing, extra = own - set(state), set(state) - own
    if missing or extra:
        raise ValueError(f"adapter does not match the encoder: missing={sorted(missing)[:3]} extra={sorted(extra)[:3]}")
    model.load_state_dict(state, strict=False)


def set_lora_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch every adapter on or off (off = the base encoder, exactly)."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.enabled = enabled


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base layer for inference: ``W += scale * B @ A``, and
    put the plain ``nn.Linear`` back. The same function (up to float rounding), with no
    extra matmuls per layer: the adapter's two small products were ~1/6 of the encoder's
    CPU time in a profile of ``enrich_batch``. Training keeps the unmerged modules.
    Returns how many layers were merged."""
    merged = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, LoRALinear):
            continue
        base = module.base
        with torch.no_grad():
            if module.enabled:
                base.weight += (module.lora_b @ module.lora_a) * module.scale
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, base)
        merged += 1
    return merged
