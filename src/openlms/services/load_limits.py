"""What a model load may ask for, checked before anything reaches llama.cpp (issue 10).

Every load path (REST v1 load, JIT loads of /v1 and /api/v0, the SDK's loadModel/getOrLoad, per-model
load defaults, server start restoring models) goes through `ModelService`, which calls `check_load`:

- Integers llama.cpp takes as C types are checked against their ranges (nothing wraps: a context of
  2^32 + 64 tokens is refused, not loaded with 64); `parallel` is 1..64 (`MAX_PARALLEL`).
- The context length is at most the model's trained context (`<arch>.context_length`), as LM Studio's
  load dialog caps it: a longer context is refused, never silently cut.
- A model of experts takes at most as many active experts as it has; a model without experts none.
- The estimated memory (`store/memory.py`: weights + KV cache for the context with the load's cache
  types + compute buffers + vocabulary + vision projector) must fit: `load_guardrails` "strict" (default)
  compares it with the memory available now, "relaxed" with the machine's total memory, "off" skips the
  check. `memory_verdict` is that comparison; `lms load --estimate-only` (services/estimate.py) shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from openlms.core.errors import InsufficientMemoryError, InvalidRequestError
from openlms.core.types import MAX_PARALLEL, LoadConfig, ModelDescriptor, ModelKind
from openlms.store.gguf_meta import GGUFMetadata
from openlms.store.memory import (
    LoadEstimate,
    SystemMemory,
    estimate_load,
    projector_bytes,
    system_memory,
)

U32_MAX: Final = (1 << 32) - 1
I32_MAX: Final = (1 << 31) - 1
MAX_BATCH: Final = 65536
MAX_THREADS: Final = 1024
MIN_CONTEXT: Final = 1
UNQUANTIZED: Final = ("f32", "f16", "bf16")
MARGIN_BYTES: Final = 256 << 20  # left free for the server itself and the rest of the machine


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What a checked load will use."""

    context_length: int
    estimate: LoadEstimate | None  # None: the header was not available (estimate skipped)


@dataclass(frozen=True, slots=True)
class MemoryVerdict:
    """The guardrail's comparison: `fits` when the estimate is within `limit_bytes` (`where`: "available
    now" for strict, "in this machine" for relaxed; guardrails off always fit)."""

    guardrails: str
    fits: bool
    limit_bytes: int | None
    where: str


def check_load(
    descriptor: ModelDescriptor,
    meta: GGUFMetadata | None,
    config: LoadConfig,
    *,
    default_context: int,
    guardrails: str,
    param: str = "config",
    memory: SystemMemory | None = None,
    reclaimable_bytes: int = 0,
    gpu_offload: bool = False,
) -> LoadPlan:
    """Raise `InvalidRequestError` / `InsufficientMemoryError` for a load that must not start.
    `reclaimable_bytes`: what the models this load evicts first (JIT auto-evict) will give back;
    `gpu_offload`: the runtime offloads to a GPU (its compute buffers are then allocated in full)."""
    context = _context_length(descriptor, config, default_context, param)
    check_ranges(config, param=param)
    _check_v_cache(config, param)
    _check_experts(descriptor, meta, config, param)
    if meta is None:
        return LoadPlan(context, None)
    estimate = estimate_load(
        meta,
        context,
        config,
        embedding=descriptor.kind is ModelKind.EMBEDDING,
        mmproj_bytes=projector_bytes(descriptor.path) if descriptor.vision else 0,
        gpu_offload=gpu_offload,
    )
    if guardrails != "off":
        _check_memory(descriptor, estimate, guardrails, memory or system_memory(), param, reclaimable_bytes)
    return LoadPlan(context, estimate)


def check_ranges(config: LoadConfig, *, param: str = "config") -> None:
    """Every integer of a load config within the range of the C type llama.cpp stores it in."""
    _in_range(config.context_length, MIN_CONTEXT, U32_MAX, f"{param}.context_length")
    _in_range(config.eval_batch_size, 1, MAX_BATCH, f"{param}.eval_batch_size")
    _in_range(config.n_threads, 1, MAX_THREADS, f"{param}.n_threads")
    _in_range(config.num_experts, 1, I32_MAX, f"{param}.num_experts")
    _in_range(config.parallel, 1, MAX_PARALLEL, f"{param}.parallel")
    _in_range(config.seed, -(1 << 31), U32_MAX, f"{param}.seed")


def _in_range(value: int | None, low: int, high: int, name: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}, not {value}.", param=name)


def _context_length(descriptor: ModelDescriptor, config: LoadConfig, default: int, param: str) -> int:
    trained = descriptor.max_context_length
    asked = config.context_length
    if asked is None:
        return min(default, trained) if trained else default
    if trained and asked > trained:
        raise InvalidRequestError(
            f"The model's maximum context length is {trained} tokens; {asked} was asked for. Load it "
            f"with a context length of at most {trained} (e.g. `lms load {descriptor.key} "
            f"--context-length {trained}`).",
            param=f"{param}.context_length",
        )
    return asked


def _check_v_cache(config: LoadConfig, param: str) -> None:
    """llama.cpp keeps a quantized V cache only with flash attention (it refuses the context otherwise)."""
    if config.flash_attention is False and config.v_cache_type not in (None, *UNQUANTIZED):
        raise InvalidRequestError(
            f"A quantized V cache ({config.v_cache_type}) needs flash attention: leave flash_attention "
            "unset or true, or use an f16 V cache.",
            param=f"{param}.flash_attention",
        )


def _check_experts(
    descriptor: ModelDescriptor, meta: GGUFMetadata | None, config: LoadConfig, param: str
) -> None:
    if config.num_experts is None or meta is None or descriptor.kind is not ModelKind.LLM:
        return
    experts = meta.get_int(meta.arch_key("expert_count")) or 0
    if config.num_experts > experts:
        what = f"has {experts} experts" if experts else "is not a mixture of experts"
        raise InvalidRequestError(
            f"{descriptor.key} {what}; num_experts {config.num_experts} cannot be used"
            + (f" (at most {experts})." if experts else " (leave it unset)."),
            param=f"{param}.num_experts",
        )


def _check_memory(
    descriptor: ModelDescriptor,
    estimate: LoadEstimate,
    guardrails: str,
    memory: SystemMemory,
    param: str,
    reclaimable_bytes: int,
) -> None:
    verdict = memory_verdict(estimate, guardrails, memory, reclaimable_bytes)
    if verdict.fits:
        return
    limit, where = verdict.limit_bytes or 0, verdict.where
    raise InsufficientMemoryError(
        f"Loading {descriptor.key} with a context of {estimate.context_length} tokens needs about "
        f"{_gib(estimate.total_bytes)} (weights {_gib(estimate.weights_bytes)}, KV cache "
        f"{_gib(estimate.kv_cache_bytes)}), more than the {_gib(max(limit, 0))} {where}. Load it with a "
        "smaller context length, a quantized KV cache (k_cache_type/v_cache_type q8_0), or unload other "
        "models (the load_guardrails setting can relax this check).",
        param=f"{param}.context_length",
    )


def memory_verdict(
    estimate: LoadEstimate, guardrails: str, memory: SystemMemory, reclaimable_bytes: int = 0
) -> MemoryVerdict:
    """Whether `estimate` passes the `load_guardrails` setting on a machine with `memory`."""
    if guardrails == "off":
        return MemoryVerdict(guardrails, True, None, "")
    strict = guardrails == "strict"
    available = memory.available_bytes + reclaimable_bytes
    limit = (available if strict else memory.total_bytes) - MARGIN_BYTES
    where = "available now" if strict else "in this machine"
    return MemoryVerdict(guardrails, estimate.total_bytes <= limit, limit, where)


def runtime_offloads(runtime_name: str) -> bool:
    """Whether a runtime (`llama.cpp-linux-x86_64-cuda-avx2`) offloads to a GPU: its name carries one."""
    return any(f"-{gpu}-" in runtime_name for gpu in ("cuda", "metal", "vulkan", "rocm", "sycl", "gpu"))


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB"
