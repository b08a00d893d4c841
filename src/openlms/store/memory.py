"""The one estimate of what loading a model costs in memory, from its GGUF header: the weights, the KV
cache for the load's context (with its K/V cache types), and llama.cpp's compute buffers; and what the
machine has (`psutil`, on Linux, macOS and Windows alike).

The KV cache is counted for every layer at the full context (llama.cpp keeps less for sliding-window
layers), so the estimate errs on the high side for models such as Gemma 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import psutil
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from openlms.core.types import KvCacheType
from openlms.store.gguf_meta import GGUFMetadata

DEFAULT_UBATCH: Final = 512
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


@dataclass(frozen=True, slots=True)
class LoadEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    context_length: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes


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
    *,
    k_cache_type: KvCacheType | None = None,
    v_cache_type: KvCacheType | None = None,
) -> LoadEstimate:
    """Bytes needed to load `meta`'s model with a context of `context_length` tokens (f16 cache unless
    the load sets the K/V cache types)."""
    weights = meta.tensor_bytes if meta.tensor_bytes is not None else meta.file_size
    per_token = kv_bytes_per_token(meta, k_cache_type or "f16", v_cache_type or "f16")
    n_vocab = meta.vocab_size or 0
    n_embd = meta.embedding_length or 0
    compute = DEFAULT_UBATCH * (n_vocab + 8 * n_embd) * 4
    return LoadEstimate(weights, per_token * context_length, compute, context_length)


def kv_bytes_per_token(meta: GGUFMetadata, k_type: KvCacheType, v_type: KvCacheType) -> int:
    """K and V bytes one token takes in the cache, summed over the layers."""
    n_layers = meta.block_count or 0
    n_embd = meta.embedding_length or 0
    heads = _per_layer(meta, "attention.head_count", n_layers)
    kv_heads = _per_layer(meta, "attention.head_count_kv", n_layers) or heads
    if not kv_heads:
        return 0
    n_head = max(heads) if heads else 0
    k_dim = meta.get_int(meta.arch_key("attention.key_length")) or (n_embd // n_head if n_head else n_embd)
    v_dim = meta.get_int(meta.arch_key("attention.value_length")) or k_dim
    per_head = k_dim * _element_bytes(k_type) + v_dim * _element_bytes(v_type)
    return int(sum(kv_heads) * per_head)


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
