"""Sentence spans and the LoRA adapter mechanics."""

from __future__ import annotations

import torch

from enrichment_ai.analysis.lora import (
    LoRALinear, inject_lora, load_lora_state_dict, lora_state_dict, set_lora_enabled,
)
from enrichment_ai.analysis.spans import sentence_spans


def test_sentence_spans_offsets():
    text = "Hello there!  You are great. \nSee you soon"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["Hello there!", "You are great.", "See you soon"]
    assert sentence_spans("   ") == []
    assert sentence_spans("one") == [(0, 3)]


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.ModuleList([torch.nn.Module() for _ in range(2)])
        for blk in self.layer:
            blk.query = torch.nn.Linear(4, 4)

    def forward(self, x):
        for blk in self.layer:
            x = blk.query(x)
        return x


def test_lora_starts_as_identity_and_round_trips():
    torch.manual_seed(0)
    model = _Toy()
    x = torch.randn(3, 4)
    before = model(x)
    names = inject_lora(model, rank=2, alpha=4, targets=("query",), layers=[1])
    assert names == ["layer.1.query"]
    assert isinstance(model.layer[1].query, LoRALinear)
    assert torch.allclose(model(x), before)  # B starts at zero
    with torch.no_grad():
        model.layer[1].query.lora_b.fill_(0.5)
    changed = model(x)
    assert not torch.allclose(changed, before)
    set_lora_enabled(model, False)
    assert torch.allclose(model(x), before)
    set_lora_enabled(model, True)
    state = lora_state_dict(model)
    assert set(state) == {"layer.1.query.lora_a", "layer.1.query.lora_b"}
    fresh = _Toy()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if ".lora_" not in k}, strict=False)
    fresh.layer[0].query.load_state_dict(model.layer[0].query.state_dict())
    fresh.layer[1].query.weight.data.copy_(model.layer[1].query.base.weight)
    fresh.layer[1].query.bias.data.copy_(model.layer[1].query.base.bias)
    inject_lora(fresh, rank=2, alpha=4, targets=("query",), layers=[1])
    load_lora_state_dict(fresh, state)
    assert torch.allclose(fresh(x), changed)


def test_merged_lora_computes_the_same_function_with_plain_linears():
    from enrichment_ai.analysis.lora import merge_lora

    torch.manual_seed(1)
    model = _Toy()
    inject_lora(model, rank=2, alpha=4, targets=("query",))
    with torch.no_grad():
        for blk in model.layer:
            blk.query.lora_b.normal_()
    x = torch.randn(5, 4)
    adapted = model(x)
    assert merge_lora(model) == len(model.layer)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(model(x), adapted, atol=1e-5)
