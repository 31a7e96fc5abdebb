"""Multi-task LoRA adaptation of the shared encoder's top layers, jointly with all heads.

The lower layers stay frozen, so their output is computed once and cached
(:mod:`enrichment_ai.training.features`); each step runs only the top ``adapt_layers``
layers (with LoRA on their attention and feed-forward projections), mean-pools,
L2-normalises and applies the task's head. Batches are single-task, shuffled across
tasks; class-weighted cross-entropy targets the macro metrics. Heads start from
logistic regressions on the frozen embedding. With ``cfg.ema`` set, an exponential
moving average of the trained weights is what gets evaluated and kept (it smooths the
step-to-step noise of small single-task batches). The checkpoint with the best
:func:`~enrichment_ai.training.trainer.selection_score` over every val set is kept. At inference the same adapter sits inside the full
encoder: still one forward pass per message.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from enrichment_ai.analysis.heads import TASK_LABELS, Head
from enrichment_ai.training.data import TASKS


def _batch_states(feats, idx, offsets):
    """Pad the cached token states of ``idx`` into (b, t, d) float32 + (b, t) mask."""
    import torch

    lens = feats.lengths[idx]
    width = int(lens.max())
    x = np.zeros((len(idx), width, feats.states.shape[1]), dtype=np.float32)
    m = np.zeros((len(idx), width), dtype=np.int64)
    for r, (i, n) in enumerate(zip(idx, lens)):
        x[r, :n] = feats.states[offsets[i] : offsets[i] + n]
        m[r, :n] = 1
    return torch.from_numpy(x), torch.from_numpy(m)


class EMA:
    """Exponential moving average of some parameters (``decay`` per step)."""

    def __init__(self, params, decay: float) -> None:
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]

    def update(self) -> None:
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                s.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

    def swap(self) -> None:
        """Exchange live and averaged weights (call twice to undo)."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                tmp = p.detach().clone()
                p.copy_(s)
                s.copy_(tmp)


class TopStack:
    """The adapted top layers of the encoder, run on cached lower-layer states."""

    def __init__(self, model, split_layer: int) -> None:
        self.model = model
        self.layers = list(model.encoder.layer)[split_layer:]

    def pooled(self, x, mask):
        """(b, t, d) states + mask -> L2-normalised mean-pooled (b, d)."""
        import torch
        from transformers.masking_utils import create_bidirectional_mask

        att = create_bidirectional_mask(config=self.model.config, inputs_embeds=x, attention_mask=mask)
        h = x
        for layer in self.layers:
            out = layer(h, att)
            h = out[0] if isinstance(out, tuple) else out
        mf = mask.unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * mf).sum(1) / mf.sum(1), dim=-1)

    def pooled_all(self, feats, batch_size: int = 128) -> np.ndarray:
        """Pooled embeddings for every cached text (eval mode, no grad), length-sorted."""
        import torch

        offsets = feats.offsets()
        order = np.argsort(feats.lengths, kind="stable")
        out = np.zeros((len(feats.lengths), feats.states.shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                x, m = _batch_states(feats, idx, offsets)
                out[idx] = self.pooled(x, m).numpy()
        return out


def epoch_plan(lengths: dict[str, np.ndarray], repeats: dict[str, int], batch_size: int, rng) -> list:
    """One epoch's single-task batches ``(task, indices)``, shuffled across tasks: every
    example of a task ``repeats[task]`` times, batched by similar length within chunks
    of 50 batches (little padding, still random)."""
    batches = []
    for t, lens in lengths.items():
        perm = np.concatenate([rng.permutation(len(lens)) for _ in range(repeats.get(t, 1))])
        chunk = batch_size * 50
        for c in range(0, len(perm), chunk):
            part = perm[c : c + chunk]
            part = part[np.argsort(lens[part], kind="stable")]
            batches += [(t, part[i : i + batch_size]) for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _init_heads(feats, seed: int):
    """Logistic-regression warm start for every head (frozen pooled embedding)."""
    import torch
    from sklearn.linear_model import LogisticRegression

    heads = torch.nn.ModuleDict()
    for task in TASKS:
        data, f = feats[(task, "train")]
        m = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed).fit(f.pooled, data.labels)
        coef, bias = m.coef_, m.intercept_
        if coef.shape[0] == 1:
            coef, bias = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-bias / 2, bias / 2])
        lin = torch.nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(coef, dtype=torch.float32))
            lin.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        heads[task] = lin
    return heads


def _class_weights(labels: np.ndarray, n: int, task: str):
    import torch

    counts = np.bincount(labels, minlength=n).astype(float)
    w = len(labels) / (n * np.maximum(counts, 1))
    w = w if task == "sentiment" else np.sqrt(w)  # macro-recall wants full balancing
    return torch.tensor(w, dtype=torch.float32)


def train_multitask(encoder, feats, cfg, split_layer: int, log):
    """Train adapter + heads; return (heads, adapter tensors, adapter config, pooled, log rows,
    the kept checkpoint: step, epoch and mean val metric)."""
    import torch
    from tqdm import tqdm

    from enrichment_ai.analysis.lora import DEFAULT_TARGETS, inject_lora, lora_state_dict

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = encoder.model
    n_layers = int(model.config.num_hidden_layers)
    layers = list(range(split_layer, n_layers))
    inject_lora(model, cfg.rank, cfg.alpha, DEFAULT_TARGETS, layers, dropout=0.1)
    for p in model.parameters():
        p.requires_grad_(False)
    lora_params = [p for n, p in model.named_parameters() if ".lora_" in n]
    for p in lora_params:
        p.requires_grad_(True)
    stack = TopStack(model, split_layer)
    heads = _init_heads(feats, cfg.seed)
    opt = torch.optim.AdamW([{"params": lora_params, "lr": cfg.lr, "weight_decay": 0.0},
                             {"params": heads.parameters(), "lr": cfg.head_lr, "weight_decay": 1e-4}])
    weights = {t: _class_weights(feats[(t, "train")][0].labels, len(TASK_LABELS[t]), t) for t in TASKS}
    offsets = {t: feats[(t, "train")][1].offsets() for t in TASKS}
    repeats = {t: max(1, int(cfg.task_repeats.get(t, 1))) for t in TASKS}
    lengths = {t: feats[(t, "train")][1].lengths for t in TASKS}

    from enrichment_ai.training.trainer import selection_score, val_score, val_sets

    def evaluate():
        model.eval()
        scores = {}
        for key, name, metric_name in val_sets(feats):
            data, f = feats[key]
            with torch.inference_mode():
                pred = heads[key[0]](torch.from_numpy(stack.pooled_all(f))).argmax(-1).numpy()
            scores[name] = val_score(data.labels, pred, key[0], metric_name)
        return scores

    ema = EMA(lora_params + list(heads.parameters()), float(cfg.ema)) if cfg.ema else None
    base = evaluate()
    best = (selection_score(base), copy.deepcopy(lora_state_dict(model)), copy.deepcopy(heads.state_dict()), 0)
    rows = [{"step": 0, "epoch": 0.0, **{k: round(v, 4) for k, v in base.items()}}]
    log("start (warm heads): " + ", ".join(f"{k}={v:.4f}" for k, v in base.items()))
    per_epoch = sum(-(-len(feats[(t, "train")][0]) * repeats[t] // cfg.batch_size) for t in TASKS)
    total = int(per_epoch * cfg.epochs)
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / max(total, 1)))
    eval_every = max(1, per_epoch // max(1, int(cfg.evals_per_epoch)))
    t0, step, stop = time.time(), 0, False
    bar = tqdm(total=total, desc="adapter", mininterval=10)
    while step < total and not stop:
        for t, idx in epoch_plan(lengths, repeats, cfg.batch_size, rng):
            model.train()
            x, m = _batch_states(feats[(t, "train")][1], idx, offsets[t])
            y = torch.from_numpy(feats[(t, "train")][0].labels[idx])
            loss = torch.nn.functional.cross_entropy(heads[t](stack.pooled(x, m)), y, weight=weights[t])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora_params + list(heads.parameters()), 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update()
            step += 1
            bar.update(1)
            over = ((cfg.max_minutes is not None and (time.time() - t0) / 60 > cfg.max_minutes)
                    or (getattr(cfg, "max_steps", None) is not None and step >= cfg.max_steps))
            if step % eval_every == 0 or step >= total or over:
                if ema is not None:
                    ema.swap()  # evaluate (and keep) the averaged weights
                s = evaluate()
                mean = selection_score(s)
                if mean > best[0]:
                    best = (mean, copy.deepcopy(lora_state_dict(model)), copy.deepcopy(heads.state_dict()), step)
                if ema is not None:
                    ema.swap()
                rows.append({"step": step, "epoch": round(step / per_epoch, 3), "minutes": round((time.time() - t0) / 60, 2),
                             **{k: round(v, 4) for k, v in s.items()}})
                log(f"step {step}/{total} ({rows[-1]['minutes']} min): selection {mean:.4f}; "
                    + ", ".join(f"{k}={v:.4f}" for k, v in s.items()))
            if step >= total or over:
                stop = True
                break
    bar.close()
    selected = {"step": best[3], "epoch": round(best[3] / per_epoch, 3), "mean_val": round(best[0], 4)}
    log(f"kept the checkpoint of step {selected['step']} (epoch {selected['epoch']}): mean val {best[0]:.4f}")
    if best[3] == 0:
        log("WARNING: adapter training never beat the warm-start heads (diverged? try a lower --lr): "
            "the adapter is kept at zero, i.e. these are frozen-encoder heads")
    model.load_state_dict(best[1], strict=False)
    heads.load_state_dict(best[2])
    model.eval()
    pooled = {k: stack.pooled_all(f) for k, (_, f) in feats.items() if k[1] != "train" or k[0] == "topics"}
    out_heads = {t: Head(TASK_LABELS[t], heads[t].weight.detach().clone(), heads[t].bias.detach().clone()) for t in TASKS}
    config = {"rank": cfg.rank, "alpha": cfg.alpha, "targets": list(DEFAULT_TARGETS), "layers": layers,
              "trained_layers_from": split_layer}
    return out_heads, lora_state_dict(model), config, pooled, rows, selected
