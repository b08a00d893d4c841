"""Download options' fit marks: RAM alone on a CPU machine, the GPU's memory (nvidia-smi) with one."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from openlms.store import memory
from openlms.store.memory import SystemMemory, fit_estimation, gpu_memory_bytes

GIB = 1 << 30
RAM = SystemMemory(total_bytes=16 * GIB, available_bytes=8 * GIB)


def test_without_a_gpu_a_file_fits_in_ram_or_not() -> None:
    assert fit_estimation(4 * GIB, system=RAM) == "fitWithoutGPU"
    assert fit_estimation(15 * GIB, system=RAM) == "willNotFit"  # plus KV cache and buffers: over 16 GiB


def test_with_a_gpu_the_marks_follow_its_memory() -> None:
    assert fit_estimation(4 * GIB, system=RAM, vram_bytes=8 * GIB) == "fullGPUOffload"
    assert fit_estimation(12 * GIB, system=RAM, vram_bytes=8 * GIB) == "partialGPUOffload"
    assert fit_estimation(40 * GIB, system=RAM, vram_bytes=8 * GIB) == "willNotFit"


def _nvidia_smi(stdout: str, *, fail: bool = False) -> Any:
    def run(cmd: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:] == ["--query-gpu=memory.total", "--format=csv,noheader,nounits"]
        if fail:
            raise subprocess.CalledProcessError(9, cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=stdout)

    return run


def test_gpu_memory_is_the_largest_nvidia_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.shutil, "which", lambda _name: "/usr/bin/nvidia-smi")
    assert gpu_memory_bytes(_nvidia_smi("81559\n24576\n")) == 81559 * 1024 * 1024
    assert gpu_memory_bytes(_nvidia_smi("", fail=True)) is None  # driver not loaded
    assert gpu_memory_bytes(_nvidia_smi("[N/A]\n")) is None


def test_no_nvidia_smi_means_no_gpu_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.shutil, "which", lambda _name: None)
    assert gpu_memory_bytes(_nvidia_smi("24576")) is None
