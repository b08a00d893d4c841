"""The portable llama.cpp build flags are chosen from the CPU's features, never AMX or -march=native."""

from __future__ import annotations

import importlib.util
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
