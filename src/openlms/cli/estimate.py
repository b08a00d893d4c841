"""A rough memory estimate for `lms load --estimate-only`: the weights plus an approximate KV cache.

The public API does not expose a model's layer count or attention shape, so the KV cache is scaled from
the parameter count: about 128 KiB per token at 8B parameters (Llama 3 8B, f16 cache), with the square
root of the size ratio for other sizes. It is a ballpark figure, and the output says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import MappingProxyType

from openlms.cli.render import format_size
from openlms.cli.schema import ModelInfo

_KV_BYTES_PER_TOKEN_8B = 131072
_MIN_KV_BYTES_PER_TOKEN = 8192
_DEFAULT_BITS_PER_WEIGHT = 4.5
_PARAMS = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = MappingProxyType({"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12})


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    context_length: int
    gpu_bytes: int | None  # None: the GPU share is left to the server ("auto")

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes


def parse_params(text: str | None) -> float | None:
    """`135M` -> 1.35e8, `1.5B` -> 1.5e9, `8x7B` -> 5.6e10; None when unparseable."""
    match = _PARAMS.match(text or "")
    if not match:
        return None
    experts = int(match.group(1) or 1)
    return experts * float(match.group(2)) * _SCALE[match.group(3).upper()]


def estimate_memory(model: ModelInfo, context_length: int, gpu: str | float | None) -> MemoryEstimate:
    params = parse_params(model.params_string)
    if params is None:
        params = model.size_bytes * 8 / (model.bits_per_weight or _DEFAULT_BITS_PER_WEIGHT)
    per_token = max(_KV_BYTES_PER_TOKEN_8B * math.sqrt(max(params, 1.0) / 8e9), _MIN_KV_BYTES_PER_TOKEN)
    kv = int(per_token * context_length)
    ratio = 1.0 if gpu == "max" else 0.0 if gpu == "off" else gpu if isinstance(gpu, float) else None
    gpu_bytes = None if ratio is None else int(ratio * (model.size_bytes + kv))
    return MemoryEstimate(model.size_bytes, kv, context_length, gpu_bytes)


def render_estimate(model: ModelInfo, estimate: MemoryEstimate) -> str:
    name = f"{model.publisher}/{model.key}" if model.publisher else model.key
    lines = [f"Model: {name}", f"Context length: {estimate.context_length} tokens"]
    if estimate.gpu_bytes is not None:
        lines.append(f"Estimated GPU Memory:   {format_size(estimate.gpu_bytes)}")
    lines += [
        f"Estimated Total Memory: {format_size(estimate.total_bytes)}",
        "",
        f"Estimate: the model file ({format_size(estimate.weights_bytes)}) plus an approximate KV cache "
        f"({format_size(estimate.kv_cache_bytes)} for {estimate.context_length} tokens). Actual usage "
        "depends on the architecture and the load settings.",
    ]
    return "\n".join(lines)
