#!/usr/bin/env python3
"""Portable build settings for llama-cpp-python: CMake flags, pinned version and wheel-cache key.

    python scripts/llama_cmake_args.py            # the CMAKE_ARGS for this machine
    python scripts/llama_cmake_args.py --pin      # the pinned llama-cpp-python version (from pyproject.toml)
    python scripts/llama_cmake_args.py --key      # the wheel-cache key (run it with the venv's python)
    python scripts/llama_cmake_args.py --cpuinfo FILE --machine x86_64   # for checks on other CPUs

Why: llama.cpp's default build uses -march=native, which also turns on AMX on CPUs that list it; some VMs
list AMX but do not run it (SIGILL). So we build with GGML_NATIVE=OFF and turn on exactly the SIMD
extensions that /proc/cpuinfo lists, never AMX and never GGML_CPU_ALL_VARIANTS.
With GGML_NATIVE=OFF, ggml turns SSE42/AVX/AVX2/BMI2/FMA/F16C on by default, so a missing one is turned
off explicitly (the build unsets SOURCE_DATE_EPOCH, which would flip those defaults).
OPENLMS_LLAMA_CMAKE_ARGS, when set, replaces the computed flags verbatim (e.g. to add -DGGML_CUDA=ON).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
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


def pinned_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    m = re.search(r'"llama-cpp-python==([^"\s;]+)"', pyproject.read_text())
    if not m:
        sys.exit(f"error: no llama-cpp-python==X pin in {pyproject}")
    return m.group(1)


def cache_key(version: str, args: str) -> str:
    """Hash of (version, CMAKE_ARGS, python tag, machine); run with the venv's python."""
    parts = [f"llama-cpp-python=={version}", args, sys.implementation.cache_tag or "", platform.machine()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpuinfo", default="/proc/cpuinfo", help="cpuinfo file to read (default /proc/cpuinfo)")
    p.add_argument("--machine", default=platform.machine(), help="machine (default: platform.machine())")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--key", action="store_true", help="print the wheel-cache key")
    what.add_argument("--pin", action="store_true", help="print the pinned llama-cpp-python version")
    a = p.parse_args()

    if a.pin:
        print(pinned_version())
        return
    override = os.environ.get("OPENLMS_LLAMA_CMAKE_ARGS", "").strip()
    if override:
        args = override
    else:
        is_x86 = a.machine.lower() in ("x86_64", "amd64", "i686", "i386")
        try:
            text = Path(a.cpuinfo).read_text()
        except OSError as e:
            if is_x86:
                sys.exit(f"error: cannot read {a.cpuinfo} ({e}); set OPENLMS_LLAMA_CMAKE_ARGS by hand")
            text = ""
        if is_x86 and not cpu_flags(text):
            sys.exit(f"error: no 'flags' line in {a.cpuinfo}; set OPENLMS_LLAMA_CMAKE_ARGS by hand")
        args = " ".join(cmake_args(cpu_flags(text), a.machine))
    print(cache_key(pinned_version(), args) if a.key else args)


if __name__ == "__main__":
    main()
