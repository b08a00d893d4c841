#!/usr/bin/env python3
"""Build settings for llama-cpp-python: backend, CMake flags, pinned version and wheel-cache key.

    python scripts/llama_cmake_args.py            # the CMAKE_ARGS for this machine
    python scripts/llama_cmake_args.py --backend  # the backend chosen: cpu, cuda or metal
    python scripts/llama_cmake_args.py --pin      # the pinned llama-cpp-python version (from pyproject.toml)
    python scripts/llama_cmake_args.py --key      # the wheel-cache key (run it with the venv's python)
    python scripts/llama_cmake_args.py --cpuinfo FILE --machine x86_64 --system Linux  # other machines

Backend: CUDA (-DGGML_CUDA=ON, for the GPUs' compute capabilities) when `nvcc` is found (PATH, then
$CUDA_HOME/bin or /usr/local/cuda/bin) AND `nvidia-smi` lists a GPU: a CUDA toolkit without a GPU and
driver (CI images, build boxes) gets the CPU build, since a CUDA build cannot even load without libcuda.
Metal on Apple Silicon (Darwin arm64; llama.cpp's documented -DGGML_METAL=ON). The CPU build otherwise.

Why: llama.cpp's default build uses -march=native, which also turns on AMX on CPUs that list it; some VMs
list AMX but do not run it (SIGILL). So we build with GGML_NATIVE=OFF and turn on exactly the SIMD
extensions that /proc/cpuinfo lists, never AMX and never GGML_CPU_ALL_VARIANTS.
With GGML_NATIVE=OFF, ggml turns SSE42/AVX/AVX2/BMI2/FMA/F16C on by default, so a missing one is turned
off explicitly (the build unsets SOURCE_DATE_EPOCH, which would flip those defaults).
On macOS there is no /proc/cpuinfo: an Intel Mac's flags come from `sysctl machdep.cpu.features
machdep.cpu.leaf7_features` (no extra flags if that fails).
A user's own OPENLMS_LLAMA_CMAKE_ARGS, else CMAKE_ARGS, replaces the computed flags verbatim.
The wheel-cache key includes the backend, so a CPU wheel is never reused for a CUDA build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = ["-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]

# (ggml option, /proc/cpuinfo flags it needs). Order matters: it is part of the cache key.
# GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw, so it needs all five.
X86_ON = [
    ("GGML_AVX", {"avx"}),
    ("GGML_AVX2", {"avx2"}),
    ("GGML_FMA", {"fma"}),
    ("GGML_F16C", {"f16c"}),
    ("GGML_AVX512", {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}),
    ("GGML_AVX512_VNNI", {"avx512_vnni"}),
    ("GGML_AVX512_BF16", {"avx512_bf16"}),
    ("GGML_AVX512_VBMI", {"avx512vbmi"}),
    ("GGML_AVX_VNNI", {"avx_vnni"}),
]
AVX512_EXTENSIONS = {"GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX512_VBMI"}
# Options that ggml turns ON by default when GGML_NATIVE=OFF: switched OFF when the CPU lacks them.
X86_DEFAULT_ON = [
    ("GGML_SSE42", {"sse4_2"}),
    ("GGML_AVX", {"avx"}),
    ("GGML_AVX2", {"avx2"}),
    ("GGML_BMI2", {"bmi2"}),
    ("GGML_FMA", {"fma"}),
    ("GGML_F16C", {"f16c"}),
]


# sysctl's names (upper-cased there) -> /proc/cpuinfo's, where they differ.
DARWIN_NAMES = {"sse4.2": "sse4_2", "avx1.0": "avx", "avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16"}
USER_ARGS_ENV = ("OPENLMS_LLAMA_CMAKE_ARGS", "CMAKE_ARGS")


def darwin_flags(sysctl_text: str) -> set[str]:
    """`sysctl -n machdep.cpu.features machdep.cpu.leaf7_features` output as /proc/cpuinfo-style flags."""
    return {DARWIN_NAMES.get(word, word) for word in sysctl_text.lower().split()}


def cpu_flags(cpuinfo_text: str) -> set[str]:
    """The feature flags of the first CPU listed in a /proc/cpuinfo text."""
    m = re.search(r"^flags\s*:(.*)$", cpuinfo_text, re.MULTILINE)
    return set(m.group(1).split()) if m else set()


def cmake_args(flags: set[str], machine: str) -> list[str]:
    """The CMake flags for a CPU with these /proc/cpuinfo flags and this platform.machine()."""
    args = ["-DGGML_NATIVE=OFF"]
    if machine.lower() in ("x86_64", "amd64", "i686", "i386"):
        on = [opt for opt, need in X86_ON if need <= flags]
        if "GGML_AVX512" not in on:
            on = [opt for opt in on if opt not in AVX512_EXTENSIONS]
        args += [f"-D{opt}=ON" for opt in on]
        args += [f"-D{opt}=OFF" for opt, need in X86_DEFAULT_ON if not need <= flags]
    return args + ALWAYS


def choose_backend(system: str, machine: str, nvcc: str | None, gpus: list[str] | None) -> str:
    """cuda (a CUDA compiler and an NVIDIA GPU), metal (Apple Silicon) or cpu. `gpus`: None if none."""
    if nvcc and gpus is not None:
        return "cuda"
    if system == "Darwin" and machine.lower() in ("arm64", "aarch64"):
        return "metal"
    return "cpu"


def backend_args(backend: str, flags: set[str], system: str, machine: str, gpus: list[str]) -> list[str]:
    """The CMake flags of a build for `backend`; `gpus`: the CUDA compute capabilities ("8.6")."""
    if backend == "metal":
        return ["-DGGML_METAL=ON", *ALWAYS]
    args = cmake_args(flags, machine)[: -len(ALWAYS)]
    if system == "Darwin":
        args.append("-DGGML_METAL=OFF")  # Metal is ggml's default on any Mac; an Intel Mac gets the CPU build
    if backend == "cuda":
        args.append("-DGGML_CUDA=ON")
        archs = sorted({cap.replace(".", "") for cap in gpus if re.fullmatch(r"\d+\.\d+", cap)})
        if archs:
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(archs)}")
    return args + ALWAYS


def backend_of(args: str) -> str:
    """The backend a user's own CMAKE_ARGS ask for (for the cache key and the log line)."""
    for name in ("cuda", "metal", "vulkan", "hip", "sycl"):
        if re.search(rf"GGML_{name.upper()}=(ON|1|TRUE|YES)\b", args, re.IGNORECASE):
            return name
    return "cpu"


def find_nvcc() -> str | None:
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    found = shutil.which("nvcc")
    fallback = Path(cuda_home) / "bin" / "nvcc"
    return found or (str(fallback) if os.access(fallback, os.X_OK) else None)


def nvidia_gpus() -> list[str] | None:
    """The compute capabilities of the GPUs `nvidia-smi` lists ("" where it cannot say); None: no GPU."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False)
        caps = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return None
    return [line.strip() for line in caps.stdout.splitlines()] if caps.returncode == 0 else [""]


def read_flags(cpuinfo: str, system: str, machine: str) -> set[str]:
    """This CPU's flags: /proc/cpuinfo on Linux, sysctl on macOS (empty if it fails); exits if unreadable."""
    is_x86 = machine.lower() in ("x86_64", "amd64", "i686", "i386")
    if system == "Darwin":
        if not is_x86:
            return set()
        keys = ["machdep.cpu.features", "machdep.cpu.leaf7_features"]
        try:
            out = subprocess.run(
                ["sysctl", "-n", *keys], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return set()
        return darwin_flags(out.stdout)
    try:
        text = Path(cpuinfo).read_text()
    except OSError as e:
        if is_x86:
            sys.exit(f"error: cannot read {cpuinfo} ({e}); set OPENLMS_LLAMA_CMAKE_ARGS by hand")
        text = ""
    if is_x86 and not cpu_flags(text):
        sys.exit(f"error: no 'flags' line in {cpuinfo}; set OPENLMS_LLAMA_CMAKE_ARGS by hand")
    return cpu_flags(text)


def build_settings(cpuinfo: str, system: str, machine: str) -> tuple[str, str]:
    """(backend, CMAKE_ARGS) for this machine; a user's own CMake arguments win, used as given."""
    for name in USER_ARGS_ENV:
        override = os.environ.get(name, "").strip()
        if override:
            return backend_of(override), override
    gpus = nvidia_gpus()
    backend = choose_backend(system, machine, find_nvcc(), gpus)
    flags = set() if backend == "metal" else read_flags(cpuinfo, system, machine)
    return backend, " ".join(backend_args(backend, flags, system, machine, gpus or []))


def pinned_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    m = re.search(r'"llama-cpp-python==([^"\s;]+)"', pyproject.read_text())
    if not m:
        sys.exit(f"error: no llama-cpp-python==X pin in {pyproject}")
    return m.group(1)


def cache_key(version: str, args: str, backend: str = "cpu") -> str:
    """Hash of (version, CMAKE_ARGS, python tag, machine, backend); run with the venv's python.
    The CPU backend adds nothing, so the keys of existing CPU wheels stay valid."""
    parts = [f"llama-cpp-python=={version}", args, sys.implementation.cache_tag or "", platform.machine()]
    if backend != "cpu":
        parts.append(f"backend={backend}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpuinfo", default="/proc/cpuinfo", help="cpuinfo file to read (default /proc/cpuinfo)")
    p.add_argument("--machine", default=platform.machine(), help="machine (default: platform.machine())")
    p.add_argument("--system", default=platform.system(), help="OS (default: platform.system())")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--key", action="store_true", help="print the wheel-cache key")
    what.add_argument("--pin", action="store_true", help="print the pinned llama-cpp-python version")
    what.add_argument("--backend", action="store_true", help="print the backend: cpu, cuda or metal")
    a = p.parse_args()

    if a.pin:
        print(pinned_version())
        return
    backend, args = build_settings(a.cpuinfo, a.system, a.machine)
    print(backend if a.backend else cache_key(pinned_version(), args, backend) if a.key else args)


if __name__ == "__main__":
    main()
