"""The one mapping of LM Studio's `gpu` load setting to llama.cpp's offloaded layers."""

from __future__ import annotations

import pytest

from openlms.core.offload import Offload, n_gpu_layers, offload_of, offloadable_layers
from openlms.core.types import GpuSetting, LoadConfig
from openlms.engine.llama.native import _gpu_layers, backend
from openlms.engine.llama.runtime import LlamaBackend, _gpu_backend


def test_offloadable_layers_count_the_output_layer() -> None:
    assert offloadable_layers(30) == 31 and offloadable_layers(None) is None and offloadable_layers(0) is None


@pytest.mark.parametrize(
    ("gpu", "block_count", "expected"),
    [
        ("max", 30, -1),
        (None, 30, -1),  # auto: everything the backend can take
        ("off", 30, 0),
        (0.0, 30, 0),
        (1.0, 30, 31),  # all blocks and the output layer
        (0.5, 30, 16),  # round(15.5)
        (0.25, 30, 8),  # round(7.75)
        (0.1, 7, 1),
        (0.5, None, 0),  # unknown block count: a partial ratio offloads nothing
        (1.0, None, -1),
    ],
)
def test_n_gpu_layers(gpu: GpuSetting, block_count: int | None, expected: int) -> None:
    assert n_gpu_layers(gpu, block_count) == expected


@pytest.mark.parametrize("gpu", ["max", "off", None, 0.0, 0.1, 0.33, 0.5, 0.77, 0.99, 1.0])
@pytest.mark.parametrize("block_count", [1, 12, 30, 80, None])
def test_the_engine_passes_llama_cpp_the_same_count(gpu: GpuSetting, block_count: int | None) -> None:
    """LlamaModel maps config.gpu itself; the runtime hands it offloadable_layers(block_count)."""
    assert _gpu_layers(LoadConfig(gpu=gpu), offloadable_layers(block_count)) == n_gpu_layers(gpu, block_count)


def test_offload_of_reports_what_runs_where() -> None:
    assert offload_of("off", 30) == Offload("cpu", 0, 31)
    assert offload_of(0.0, 30) == Offload("cpu", 0, 31)
    assert offload_of("max", 30) == Offload("gpu", 31, 31)
    assert offload_of(1.0, 30) == Offload("gpu", 31, 31)
    assert offload_of(0.5, 30) == Offload("split", 16, 31)
    assert offload_of("max", None) == Offload("gpu", None, None)
    assert offload_of(0.5, None) == Offload("cpu", 0, None)
    assert offload_of(0.5, 30).to_json() == {"device": "split", "gpu_layers": 16, "total_layers": 31}


def test_the_runtime_name_says_which_gpu_backend_only_when_it_offloads() -> None:
    assert _gpu_backend("CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1") == "cuda"
    assert _gpu_backend("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1") == "metal"
    assert _gpu_backend("CPU : SSE3 = 1") == "gpu"
    name = LlamaBackend().name
    if backend().gpu_offload:
        assert f"-{_gpu_backend(backend().system_info)}-" in name
    else:  # this CPU-only build: nothing in the name suggests a GPU
        assert not any(gpu in name for gpu in ("cuda", "metal", "vulkan", "rocm", "sycl", "gpu"))
