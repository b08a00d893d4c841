"""GPU offload: LM Studio's `gpu` load setting (`max`, `off`, a ratio 0..1) in llama.cpp's layers.

llama.cpp's `n_gpu_layers` counts the model's repeating blocks (`<arch>.block_count`) plus one for the
output layer, so "all" is `block_count + 1` (or -1), and a ratio r offloads `round(r * (block_count + 1))`.
The engine maps the setting with these functions; the APIs report what is offloaded with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from openlms.core.types import GpuSetting


def offloadable_layers(block_count: int | None) -> int | None:
    """The layers llama.cpp can offload: the repeating blocks plus the output layer (None: unknown)."""
    return block_count + 1 if block_count else None


def n_gpu_layers(gpu: GpuSetting, block_count: int | None) -> int:
    """llama.cpp's `n_gpu_layers` for a `gpu` setting (-1: all). Auto (None) offloads everything."""
    if gpu is None or gpu == "max":
        return -1
    if gpu == "off":
        return 0
    total = offloadable_layers(block_count)
    if total is None:
        return -1 if float(gpu) >= 1.0 else 0
    return round(float(gpu) * total)


@dataclass(frozen=True, slots=True)
class Offload:
    """What a loaded instance really runs where: `device` is "gpu", "cpu" or "split"."""

    device: str
    gpu_layers: int | None  # layers on the GPU (None: unknown, when the model's block count is)
    total_layers: int | None

    def to_json(self) -> dict[str, str | int | None]:
        return {"device": self.device, "gpu_layers": self.gpu_layers, "total_layers": self.total_layers}


def offload_of(gpu: GpuSetting, block_count: int | None) -> Offload:
    """The offload of an instance whose effective setting is `gpu` (the engine reports "off" when its
    llama.cpp build has no GPU backend, so a CPU-only machine always reads as cpu / 0 layers)."""
    total = offloadable_layers(block_count)
    n = n_gpu_layers(gpu, block_count)
    if n == 0:
        return Offload("cpu", 0, total)
    if total is None:  # n is -1 here: everything, however many layers that is
        return Offload("gpu", None, None)
    layers = total if n < 0 else min(n, total)
    return Offload("gpu" if layers == total else "split", layers, total)
