"""The llama.cpp build is chosen for the machine (CUDA, Metal, portable CPU: never AMX or -march=native)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama_cmake_args.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_cmake_args", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AVX512_AMX = (
    "flags : fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw"
    " avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16"
)
AVX2_ONLY = "flags : fpu sse4_2 avx avx2 fma f16c bmi2"
OLD_CPU = "flags : fpu sse4_2"


def test_amx_is_never_enabled_and_native_is_off() -> None:
    m = load()
    args = m.cmake_args(m.cpu_flags(AVX512_AMX), "x86_64")
    assert "-DGGML_NATIVE=OFF" in args
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args and "-DGGML_AVX512_BF16=ON" in args
    assert not any("AMX" in a and a.endswith("=ON") for a in args)
    assert not any("ALL_VARIANTS" in a for a in args)


def test_missing_features_are_turned_off_explicitly() -> None:
    m = load()
    avx2 = m.cmake_args(m.cpu_flags(AVX2_ONLY), "x86_64")
    assert "-DGGML_AVX2=ON" in avx2 and "-DGGML_AVX512=ON" not in avx2
    old = m.cmake_args(m.cpu_flags(OLD_CPU), "x86_64")
    assert "-DGGML_AVX2=OFF" in old and "-DGGML_AVX=OFF" in old and "-DGGML_FMA=OFF" in old


def test_cache_key_depends_on_the_flags() -> None:
    m = load()
    a = " ".join(m.cmake_args(m.cpu_flags(AVX2_ONLY), "x86_64"))
    b = " ".join(m.cmake_args(m.cpu_flags(AVX512_AMX), "x86_64"))
    assert m.cache_key("0.3.36", a) != m.cache_key("0.3.36", b)
    assert m.cache_key("0.3.36", a) == m.cache_key("0.3.36", a)


# --- backend selection: CUDA / Metal / CPU, with fake nvcc, nvidia-smi and sysctl on PATH -----------------

CPUINFO_AVX2 = "processor : 0\nflags : fpu sse4_2 avx avx2 fma f16c bmi2\n"
CPU_KEY_ARGS = list(load().cmake_args({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}, "x86_64"))


def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def run_script(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The script's output with only tmp_path/bin (fake tools) and the basic system tools on PATH."""
    bin_dir = tmp_path / "bin"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO_AVX2)
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CUDA_HOME": str(tmp_path / "no-cuda"), "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpuinfo", str(cpuinfo), *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


SMI = 'case "$1" in -L) echo "GPU 0: NVIDIA H100 (UUID: GPU-1)";; *) echo "9.0";; esac'


def test_cuda_needs_nvcc_and_a_gpu(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    linux = ("--system", "Linux", "--machine", "x86_64")
    assert run_script(tmp_path, *linux, "--backend") == "cpu"
    fake_tool(tmp_path / "bin", "nvcc", "echo fake nvcc")  # a toolkit without a GPU (like this machine)
    assert run_script(tmp_path, *linux, "--backend") == "cpu"
    assert run_script(tmp_path, *linux) == " ".join(CPU_KEY_ARGS)
    fake_tool(tmp_path / "bin", "nvidia-smi", SMI)
    assert run_script(tmp_path, *linux, "--backend") == "cuda"
    args = run_script(tmp_path, *linux).split()
    assert "-DGGML_CUDA=ON" in args and "-DCMAKE_CUDA_ARCHITECTURES=90" in args
    assert "-DGGML_AVX2=ON" in args and "-DGGML_NATIVE=OFF" in args  # the CPU part is still portable
    (tmp_path / "bin" / "nvcc").unlink()  # a GPU but no compiler: nothing to build CUDA with
    assert run_script(tmp_path, *linux, "--backend") == "cpu"


def test_nvcc_is_also_found_under_cuda_home(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "cuda" / "bin").mkdir(parents=True)
    fake_tool(tmp_path / "cuda" / "bin", "nvcc", "echo fake nvcc")
    fake_tool(tmp_path / "bin", "nvidia-smi", SMI)
    env = {"CUDA_HOME": str(tmp_path / "cuda")}
    assert run_script(tmp_path, "--system", "Linux", "--machine", "x86_64", "--backend", env=env) == "cuda"


def test_apple_silicon_builds_metal_and_reads_no_cpuinfo(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    mac = ("--system", "Darwin", "--machine", "arm64", "--cpuinfo", str(tmp_path / "missing"))
    assert run_script(tmp_path, *mac, "--backend") == "metal"
    assert run_script(tmp_path, *mac).split() == ["-DGGML_METAL=ON", *load().ALWAYS]


def test_intel_mac_reads_sysctl_and_turns_metal_off(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    fake_tool(
        tmp_path / "bin",
        "sysctl",
        'case "$2" in machdep.cpu.features) echo "FPU SSE4.2 AVX1.0 FMA F16C";; esac; echo "BMI2 AVX2"',
    )
    intel = ("--system", "Darwin", "--machine", "x86_64", "--cpuinfo", str(tmp_path / "missing"))
    assert run_script(tmp_path, *intel, "--backend") == "cpu"
    args = run_script(tmp_path, *intel).split()
    assert "-DGGML_AVX2=ON" in args and "-DGGML_AVX=ON" in args and "-DGGML_METAL=OFF" in args
    assert "-DGGML_AVX512=ON" not in args
    (tmp_path / "bin" / "sysctl").unlink()  # no sysctl answer: no extra flags, never a crash
    fake_tool(tmp_path / "bin", "sysctl", "exit 1")
    args = run_script(tmp_path, *intel).split()
    assert "-DGGML_AVX=OFF" in args and "-DGGML_METAL=OFF" in args


def test_user_cmake_args_win_as_given(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    fake_tool(tmp_path / "bin", "nvcc", "echo fake nvcc")
    fake_tool(tmp_path / "bin", "nvidia-smi", SMI)
    env = {"CMAKE_ARGS": "-DGGML_VULKAN=on -DFOO=1"}
    linux = ("--system", "Linux", "--machine", "x86_64")
    assert run_script(tmp_path, *linux, env=env) == "-DGGML_VULKAN=on -DFOO=1"
    assert run_script(tmp_path, *linux, "--backend", env=env) == "vulkan"
    both = env | {"OPENLMS_LLAMA_CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
    assert run_script(tmp_path, *linux, env=both) == "-DGGML_NATIVE=OFF"


def test_cache_key_includes_the_backend_but_cpu_keys_are_unchanged(tmp_path: Path) -> None:
    m = load()
    args = " ".join(CPU_KEY_ARGS)
    assert m.cache_key("0.3.36", args) == m.cache_key("0.3.36", args, "cpu")
    assert m.cache_key("0.3.36", args, "cuda") != m.cache_key("0.3.36", args, "cpu")
    (tmp_path / "bin").mkdir()
    linux = ("--system", "Linux", "--machine", "x86_64")
    cpu_key = run_script(tmp_path, *linux, "--key")
    fake_tool(tmp_path / "bin", "nvcc", "echo fake nvcc")
    fake_tool(tmp_path / "bin", "nvidia-smi", SMI)
    assert run_script(tmp_path, *linux, "--key") != cpu_key
