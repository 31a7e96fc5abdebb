"""One frozen-encoder pass over the training data, cached on disk.

For every text it keeps (a) the final L2-normalised mean-pooled embedding (what frozen
heads and the topic head read) and (b) the token states entering the top ``top_layers``
encoder layers (float16). Training the adapter on the top layers then starts from (b):
the frozen lower layers are never run again, which makes CPU training affordable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Features:
    """Cached features of one text list."""

    pooled: np.ndarray  # (n, d) float32, L2-normalised final embeddings
    states: np.ndarray  # (total_tokens, d) float16, input of the first adapted layer
    lengths: np.ndarray  # (n,) tokens per text (incl. [CLS]/[SEP])

    def offsets(self) -> np.ndarray:
        """Start row of each text in ``states``."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)


def concat_features(parts: list[Features]) -> Features:
    """Features of several text lists, in order, as one."""
    return Features(np.concatenate([p.pooled for p in parts]), np.concatenate([p.states for p in parts]),
                    np.concatenate([p.lengths for p in parts]))


def _key(encoder_path: str, texts: list[str], split_layer: int, max_len: int, symbol_names: bool,
         precision: str = "fp32") -> str:
    h = hashlib.sha256(f"{encoder_path}\0{split_layer}\0{max_len}\0{symbol_names}\0v2".encode()
                       + (b"" if precision == "fp32" else f"\0{precision}".encode()))
    for t in texts:
        h.update(t.encode("utf-8", "replace") + b"\0")
    return h.hexdigest()[:24]


def compute_features(
    encoder, texts: list[str], split_layer: int, *, max_len: int = 128, cache_dir: Path | None = None,
    batch_size: int = 64, progress=None,
) -> Features:
    """Run the (frozen, un-adapted) encoder once over ``texts``; read/write the cache.

    ``split_layer``: index into ``hidden_states`` whose token states are kept (the input
    of encoder layer ``split_layer``; 6 = final output for MiniLM-L6).
    """
    import torch

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"feat-{_key(encoder.path, texts, split_layer, max_len, encoder.symbol_names, encoder.precision)}.npz"
        if path.exists():
            z = np.load(path)
            if progress is not None:
                progress.update(len(texts))
            return Features(z["pooled"], z["states"], z["lengths"])
    tok = encoder.tokenizer
    # the same tokenization as inference (Encoder.encode), truncated to max_len with [CLS]/[SEP]
    enc = [[tok.cls_token_id, *ids[: max_len - 2], tok.sep_token_id] for ids, _ in encoder.encode(texts)]
    order = np.argsort([len(e) for e in enc], kind="stable")
    pooled = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    per_text: list[np.ndarray | None] = [None] * len(texts)
    # the encoder's own precision (bf16 autocast where the CPU has it natively), as at inference
    autocast = torch.autocast(encoder.device.split(":")[0], dtype=torch.bfloat16, enabled=encoder.precision == "bf16")
    with torch.inference_mode(), autocast:
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(enc[i]) for i in idx)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(enc[i])] = torch.tensor(enc[i])
                mask[r, : len(enc[i])] = 1
            out = encoder.model(input_ids=ids.to(encoder.device), attention_mask=mask.to(encoder.device),
                                output_hidden_states=True)
            last = out.last_hidden_state.float().cpu()
            mid = out.hidden_states[split_layer].float().cpu()
            m = mask.unsqueeze(-1).float()
            p = torch.nn.functional.normalize((last * m).sum(1) / m.sum(1), dim=-1)
            for r, i in enumerate(idx):
                pooled[i] = p[r].numpy()
                per_text[i] = mid[r, : len(enc[i])].numpy().astype(np.float16)
            if progress is not None:
                progress.update(len(idx))
    lengths = np.array([len(e) for e in enc], dtype=np.int64)
    feats = Features(pooled, np.concatenate(per_text) if per_text else np.zeros((0, encoder.dim), np.float16), lengths)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, pooled=feats.pooled, states=feats.states, lengths=feats.lengths)
        tmp.rename(path)
    return feats
