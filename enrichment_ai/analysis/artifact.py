"""The files of a heads artifact (``models/*-heads/``) and its identity, without torch.

A background worker asks for an artifact's identity on every summary (stored message
embeddings are keyed by it, :func:`enrichment_ai.analysis.shared.embedding_id`) but never
runs a model over vectors it finds stored; importing torch for that cost it ~250 MB of
RSS and ~3 s of CPU (measured in the 45-minute soak of docs/metrics.md). So the digest is
computed here from the safetensors file itself: safetensors' own readers hand out
tensors of a framework, and its numpy one has no bfloat16; the file format (an 8-byte
little-endian header length, a JSON header of ``dtype``/``shape``/``data_offsets`` per
tensor and ``__metadata__``, then the raw little-endian bytes) is small and documented.
The digest is byte for byte what the torch-based one computed (shipped versions keep
their names; ``tests/unit/test_heads.py`` checks both ways).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

HEADS_FILE = "heads.safetensors"
ADAPTER_FILE = "adapter.safetensors"
CARD_FILE = "card.json"

#: safetensors dtype -> the name ``str(torch.dtype)`` gives it (part of the digest)
_TORCH_DTYPE = {"F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16",
                "BF16": "torch.bfloat16", "I64": "torch.int64", "I32": "torch.int32",
                "I16": "torch.int16", "I8": "torch.int8", "U8": "torch.uint8", "BOOL": "torch.bool",
                "F8_E4M3": "torch.float8_e4m3fn", "F8_E5M2": "torch.float8_e5m2"}


def read_safetensors_header(data: bytes) -> tuple[dict[str, Any], int]:
    """(header, offset of the data section) of a safetensors file's bytes."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than its header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("not a safetensors file: header runs past the end")
    return json.loads(data[8:8 + n]), 8 + n


def artifact_digest(directory: Path) -> str:
    """sha256 over what the weight files hold (card and README excluded): the artifact's
    identity. Canonical — tensors by name (dtype, shape, bytes) and the metadata as sorted
    JSON — because safetensors writes its metadata map in no fixed order, so the same
    weights saved twice can differ byte for byte."""
    h = hashlib.sha256()
    for name in (HEADS_FILE, ADAPTER_FILE):
        p = Path(directory) / name
        if not p.exists():
            continue
        data = p.read_bytes()
        header, base = read_safetensors_header(data)
        h.update(name.encode() + b"\0")
        h.update(json.dumps(header.pop("__metadata__", None) or {}, sort_keys=True).encode() + b"\0")
        for key in sorted(header):
            info = header[key]
            begin, end = info["data_offsets"]
            h.update(f"{key}\0{_TORCH_DTYPE[info['dtype']]}\0{tuple(int(d) for d in info['shape'])}\0".encode())
            h.update(data[base + begin:base + end])
    return h.hexdigest()


def read_card(directory: Path) -> dict[str, Any]:
    """The artifact's ``card.json`` ({} when missing)."""
    p = Path(directory) / CARD_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def write_card(directory: Path, card: dict[str, Any]) -> None:
    """Write ``card.json`` (sorted, indented, newline-terminated)."""
    p = Path(directory) / CARD_FILE
    p.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
