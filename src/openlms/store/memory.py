"""The one estimate of what loading a model costs in memory, from its GGUF header, sized the way the
engine's llama.cpp build allocates it; and what the machine has (`psutil`: Linux, macOS, Windows).

- Weights: the tensor bytes of the header (split files summed by `merge_shards`), all of them, as LM
  Studio counts them (with mmap they are resident once the model has run: the output matmul of a model
  with tied embeddings reads every row).
- KV cache: per layer, K and V rows of `key_length * kv_heads` and `value_length * kv_heads` elements
  in the load's cache types, times the cells. The engine creates a unified cache (`kv_unified`), so the
  cells are the context padded to 256 whatever `parallel` is (parallel sequences share it). Layers with
  a sliding window (Gemma 2/3, gpt-oss, Cohere 2, ...) keep `min(cells, n_swa * parallel + n_ubatch)`
  cells in llama.cpp only when `swa_full` is off; the engine leaves llama.cpp's default (`swa_full` on,
  so prompts can be cut and reused), so they keep every cell too. Embedding models get 16 sequences of
  their own (no KV cache at all for non-causal encoders such as BERT).
- Compute: llama.cpp reserves its scheduler's graph for a full ubatch (512 tokens): the logits of every
  token of the ubatch, or without flash attention the f32 KQ matrix (cells x ubatch x heads) if larger,
  plus the layer activations. On a GPU that buffer is allocated up front; on the CPU its pages are
  committed only as a prediction touches them, so the host figure counts the activations of one ubatch,
  the output buffer and, without flash attention, the KQ matrix (a long conversation fills it); calibrated
  against measured RSS: `bench/memory_estimate.py`.
- Output: a row of logits per parallel sequence for an LLM; for an embedding model a row of logits and
  one of embeddings per token of its longest input (llama.cpp's encode reserves them all).
- Runtime: llama.cpp's vocabulary (token strings, scores, BPE merges), about 180 bytes a token and 200 a
  merge (calibrated: SmolLM2, Gemma 3, MiniLM).
- A vision projector (mmproj) counts its file size.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import psutil
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from openlms.core.types import GpuSetting, KvCacheType, LoadConfig
from openlms.store.gguf_meta import GGUFMetadata
from openlms.store.naming import is_mmproj

DEFAULT_UBATCH: Final = 512  # the engine's n_ubatch for LLMs (min(eval_batch_size, 512))
DEFAULT_PARALLEL: Final = 4  # the engine's default `parallel` (LM Studio 0.4's concurrent predictions)
EMBED_SEQ_MAX: Final = 16  # the engine's sequences per embedding context
EMBED_BATCH_ALIGN: Final = 64  # an embedding context's batch: the context rounded up to this
CELL_PAD: Final = 256  # llama.cpp pads the context (and each sequence's share) to this many cells
VOCAB_TOKEN_BYTES: Final = 180  # llama.cpp's vocabulary, per token (measured)
VOCAB_MERGE_BYTES: Final = 200  # per BPE merge (measured)
_F32: Final = 4
_CACHE_TYPES: Final = {
    "f32": GGMLQuantizationType.F32,
    "f16": GGMLQuantizationType.F16,
    "bf16": GGMLQuantizationType.BF16,
    "q8_0": GGMLQuantizationType.Q8_0,
    "q4_0": GGMLQuantizationType.Q4_0,
    "q4_1": GGMLQuantizationType.Q4_1,
    "q5_0": GGMLQuantizationType.Q5_0,
    "q5_1": GGMLQuantizationType.Q5_1,
    "iq4_nl": GGMLQuantizationType.IQ4_NL,
}
# llama.cpp's sliding-window layer patterns (llama-model: `load_swa_pattern(ml, n, dense_first)`), used
# when the header has `<arch>.attention.sliding_window` but no `sliding_window_pattern` of its own
_SWA_PATTERNS: Final = {
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma3n": (5, False),
    "gemma-embedding": (6, False),
    "cohere2": (4, False),
    "gpt-oss": (2, False),
    "exaone4": (4, False),
    "olmo2": (4, False),
    "afmoe": (4, False),
    "smallthinker": (4, True),
    "modern-bert": (3, True),
}
# encoders llama.cpp runs without a KV cache (llama_model::create_memory gives them none)
_NO_KV_ARCHS: Final = frozenset(
    {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert", "neo-bert",
     "t5encoder", "wavtokenizer-dec"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KvShape:
    """The KV cache's inputs from a header: per layer, the K/V heads and whether it has a window."""

    kv_heads: tuple[int, ...]  # per layer (0: the layer keeps no KV)
    key_length: int  # per head
    value_length: int
    swa_layers: tuple[bool, ...]  # per layer: a sliding-window layer
    sliding_window: int  # n_swa (0: none)

    @property
    def n_layers(self) -> int:
        return len(self.kv_heads)


@dataclass(frozen=True, slots=True)
class LoadEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int  # what the load holds of llama.cpp's compute buffers (all of it on a GPU)
    context_length: int
    runtime_bytes: int = 0  # llama.cpp's vocabulary and other host structures
    mmproj_bytes: int = 0
    gpu_bytes: int = 0  # the share on the GPU (0: none offloaded)
    kv_cells: int = 0

    @property
    def total_bytes(self) -> int:
        return (
            self.weights_bytes
            + self.kv_cache_bytes
            + self.compute_bytes
            + self.runtime_bytes
            + self.mmproj_bytes
        )


@dataclass(frozen=True, slots=True)
class SystemMemory:
    total_bytes: int
    available_bytes: int


def system_memory() -> SystemMemory:
    vm = psutil.virtual_memory()
    return SystemMemory(total_bytes=int(vm.total), available_bytes=int(vm.available))


def estimate_load(
    meta: GGUFMetadata,
    context_length: int,
    config: LoadConfig | None = None,
    *,
    k_cache_type: KvCacheType | None = None,
    v_cache_type: KvCacheType | None = None,
    embedding: bool = False,
    mmproj_bytes: int = 0,
    gpu_offload: bool = False,
) -> LoadEstimate:
    """Bytes needed to load `meta`'s model with a context of `context_length` tokens and `config`'s
    cache types, flash attention, parallel and gpu settings (f16 cache, flash attention auto = on,
    parallel 4 when unset). `gpu_offload`: the runtime can offload (else everything stays on the CPU)."""
    config = config or LoadConfig()
    k_type = k_cache_type or config.k_cache_type or "f16"
    v_type = v_cache_type or config.v_cache_type or "f16"
    parallel = config.parallel or DEFAULT_PARALLEL
    weights = meta.tensor_bytes if meta.tensor_bytes is not None else meta.file_size
    ubatch = _ubatch(config, context_length, embedding)
    cells = kv_cells(meta, context_length, embedding=embedding)
    kv = kv_cache_bytes(meta, cells, k_type, v_type, parallel=parallel, ubatch=ubatch, embedding=embedding)
    output = output_bytes(meta, ubatch if embedding else parallel, embedding=embedding)
    ratio = gpu_ratio(config.gpu) if gpu_offload else 0.0
    flash = config.flash_attention is not False
    reserved = compute_reserved_bytes(meta, cells, ubatch, flash_attention=flash, embedding=embedding)
    resident = _activations(meta, ubatch) + output + _kq_bytes(meta, cells, ubatch, flash)
    compute = reserved + output if ratio > 0 else resident
    gpu = int(ratio * (weights + kv)) + (reserved + mmproj_bytes if ratio > 0 else 0)
    cells = cells if kv else 0  # an encoder keeps no cache
    return LoadEstimate(weights, kv, compute, context_length, vocab_bytes(meta), mmproj_bytes, gpu, cells)


def projector_bytes(model_path: Path) -> int:
    """The size of the vision projector (`mmproj*.gguf`) beside a model file (the largest; 0: none)."""
    try:
        sizes = [p.stat().st_size for p in model_path.parent.iterdir() if is_mmproj(p.name)]
    except OSError:
        return 0
    return max(sizes, default=0)


def gpu_ratio(gpu: GpuSetting) -> float:
    """The share of the model a `gpu` setting offloads (auto: all, as the engine does)."""
    if gpu is None or gpu == "max":
        return 1.0
    if gpu == "off":
        return 0.0
    return min(max(float(gpu), 0.0), 1.0)


def _ubatch(config: LoadConfig, context_length: int, embedding: bool) -> int:
    if embedding:  # one input is one ubatch: the context rounded up to a multiple of 64
        return -(-context_length // EMBED_BATCH_ALIGN) * EMBED_BATCH_ALIGN
    return min(config.eval_batch_size or DEFAULT_UBATCH, DEFAULT_UBATCH)


def _pad(n: int, to: int = CELL_PAD) -> int:
    return -(-n // to) * to


def kv_cells(meta: GGUFMetadata, context_length: int, *, embedding: bool = False) -> int:
    """The KV cache's cells: the context padded to 256 (unified cache); an embedding context has 16
    sequences of at least 256 cells each."""
    if embedding:
        return _pad(max(_pad(context_length) // EMBED_SEQ_MAX, 1)) * EMBED_SEQ_MAX
    return _pad(context_length)


def kv_shape(meta: GGUFMetadata) -> KvShape:
    """The attention geometry llama.cpp sizes the KV cache from."""
    n_layers = meta.block_count or 0
    n_embd = meta.embedding_length or 0
    heads = _per_layer(meta, "attention.head_count", n_layers)
    kv_heads = _per_layer(meta, "attention.head_count_kv", n_layers) or heads
    n_head = max(heads) if heads else 0
    k_dim = meta.get_int(meta.arch_key("attention.key_length")) or (n_embd // n_head if n_head else 0)
    v_dim = meta.get_int(meta.arch_key("attention.value_length")) or k_dim
    window = meta.get_int(meta.arch_key("attention.sliding_window")) or 0
    swa = _swa_layers(meta, len(kv_heads)) if window > 0 else (False,) * len(kv_heads)
    return KvShape(tuple(kv_heads), k_dim, v_dim, swa, window)


def kv_cache_bytes(
    meta: GGUFMetadata,
    cells: int,
    k_type: KvCacheType = "f16",
    v_type: KvCacheType = "f16",
    *,
    parallel: int = DEFAULT_PARALLEL,
    ubatch: int = DEFAULT_UBATCH,
    embedding: bool = False,
    swa_full: bool = True,
) -> int:
    """K and V bytes of the whole cache. `swa_full` (the engine's setting): sliding-window layers keep
    every cell; off, they keep `min(cells, n_swa * parallel + ubatch)` padded to 256, as llama.cpp does."""
    if embedding and (meta.architecture in _NO_KV_ARCHS or meta.causal_attention is False):
        return 0
    shape = kv_shape(meta)
    swa_cells = cells if swa_full else min(cells, _pad(shape.sliding_window * parallel + ubatch))
    per_head = shape.key_length * _element_bytes(k_type) + shape.value_length * _element_bytes(v_type)
    total = 0.0
    for heads, swa in zip(shape.kv_heads, shape.swa_layers, strict=True):
        total += heads * per_head * (swa_cells if swa else cells)
    return int(total)


def kv_bytes_per_token(meta: GGUFMetadata, k_type: KvCacheType, v_type: KvCacheType) -> int:
    """K and V bytes one token takes in the cache, summed over the layers."""
    return kv_cache_bytes(meta, 1, k_type, v_type)


def compute_reserved_bytes(
    meta: GGUFMetadata, cells: int, ubatch: int, *, flash_attention: bool = True, embedding: bool = False
) -> int:
    """llama.cpp's compute buffer as its scheduler reserves it for a full ubatch: the larger of the
    logits of every token and (without flash attention) the KQ matrix and its mask, plus activations."""
    logits = 0 if embedding else (meta.vocab_size or 0) * ubatch * _F32
    attention = cells * ubatch * 2 + _kq_bytes(meta, cells, ubatch, flash_attention)  # f16 mask, KQ
    return max(logits, attention) + _activations(meta, ubatch)


def _kq_bytes(meta: GGUFMetadata, cells: int, ubatch: int, flash_attention: bool) -> int:
    """Without flash attention, the f32 KQ matrix of a ubatch against every cell (on the CPU too: a
    long conversation touches all of it, and its pages stay committed)."""
    if flash_attention:
        return 0
    n_head = max(_per_layer(meta, "attention.head_count", meta.block_count or 0) or [0])
    return cells * ubatch * n_head * _F32


def output_bytes(meta: GGUFMetadata, n_outputs: int, *, embedding: bool = False) -> int:
    """llama.cpp's output buffer (host memory): an LLM's one row of logits per sequence (`n_outputs`:
    parallel). An embedding context outputs every token of an input, and llama.cpp then sizes the buffer
    for a row of logits and one of embeddings per token (`output_reserve`): `n_outputs` is the longest
    input (a ubatch: 60 MiB for MiniLM at 512 tokens, more than its weights)."""
    n_vocab = meta.vocab_size or 0
    if embedding:
        return (n_vocab + (meta.embedding_length or 0)) * _F32 * max(n_outputs, EMBED_SEQ_MAX)
    return n_vocab * _F32 * n_outputs


def vocab_bytes(meta: GGUFMetadata) -> int:
    merges = meta.array_lengths.get("tokenizer.ggml.merges", 0)
    return (meta.vocab_size or 0) * VOCAB_TOKEN_BYTES + merges * VOCAB_MERGE_BYTES


def _activations(meta: GGUFMetadata, ubatch: int) -> int:
    """One ubatch's activations through a layer (calibrated: 2 embeddings and 3 feed-forward rows)."""
    n_embd = meta.embedding_length or 0
    n_ff = max(_per_layer(meta, "feed_forward_length", meta.block_count or 0) or [4 * n_embd])
    return ubatch * (2 * n_embd + 3 * n_ff) * _F32


def _swa_layers(meta: GGUFMetadata, n_layers: int) -> tuple[bool, ...]:
    """Which layers use the sliding window: the header's pattern (per-layer flags, or a period: the last
    layer of each period is dense; 0: every layer windowed), else llama.cpp's pattern for the
    architecture; an architecture llama.cpp runs without a window gets none."""
    value = meta.kv.get(meta.arch_key("attention.sliding_window_pattern"))
    if isinstance(value, tuple) and len(value) >= n_layers:
        return tuple(bool(v) for v in value[:n_layers])
    known = _SWA_PATTERNS.get(meta.architecture or "")
    if isinstance(value, int) and not isinstance(value, bool):
        period, dense_first = value, known[1] if known else False
    elif known:
        period, dense_first = known
    else:
        return (False,) * n_layers
    if period <= 0:
        return (True,) * n_layers
    if dense_first:
        return tuple(i % period != 0 for i in range(n_layers))
    return tuple(i % period < period - 1 for i in range(n_layers))


def _per_layer(meta: GGUFMetadata, suffix: str, n_layers: int) -> list[int]:
    """One count per layer, from a scalar or a per-layer array."""
    key = meta.arch_key(suffix)
    value = meta.kv.get(key)
    if isinstance(value, tuple):
        return [int(v) for v in value if isinstance(v, int | float)]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layers
    return []


def _element_bytes(cache_type: KvCacheType) -> float:
    block, size = GGML_QUANT_SIZES[_CACHE_TYPES[cache_type]]
    return size / block


FitEstimation = Literal["fullGPUOffload", "partialGPUOffload", "fitWithoutGPU", "willNotFit"]
_RUNTIME_OVERHEAD: Final = 1.2  # KV cache at a default context and compute buffers, over the file size


def fit_estimation(
    size_bytes: int, *, system: SystemMemory | None = None, vram_bytes: int | None = None
) -> FitEstimation:
    """Whether a download of `size_bytes` (the GGUF files) will run here, in the SDK's terms: all on the
    GPU, partly on it, in RAM without a GPU, or not at all (LM Studio's "may not fit")."""
    need = int(size_bytes * _RUNTIME_OVERHEAD)
    total = (system or system_memory()).total_bytes
    if vram_bytes:
        if need <= vram_bytes:
            return "fullGPUOffload"
        if need <= vram_bytes + total:
            return "partialGPUOffload"
        return "willNotFit"
    return "fitWithoutGPU" if need <= total else "willNotFit"


def gpu_memory_bytes(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> int | None:
    """Total memory of this machine's largest NVIDIA GPU (from `nvidia-smi`), None when there is none or
    it cannot be asked. Other GPUs (Metal's unified memory, Vulkan, ROCm) are not detected: their options
    are marked by RAM alone."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    mib = [int(float(v)) for v in out.split() if _is_number(v)]
    return max(mib) * 1024 * 1024 if mib else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
