#!/usr/bin/env bash
# The one prepared GPU check of issue 11 §4, for a session that has a machine with an NVIDIA GPU:
# build llama-cpp-python with CUDA (scripts/llama_cmake_args.py chooses it when nvcc and a GPU are there),
# check that llama.cpp offloads, then bench/gpu_check.py: load SmolLM2 with --gpu max, report what
# `lms ps --json` and /api/v0/models say is offloaded, stream one chat and 4 at once, and the same single
# chat with --gpu off. Figures: stdout and ${OUT:-.}/gpu-check.json (plus the build's build-info.txt).
#   bench/gpu_check.sh [bench/gpu_check.py options, e.g. --streams 8 --tokens 512]
# Needs: Python 3.11+, cmake, a C/C++ compiler, the CUDA toolkit (nvcc on PATH or in /usr/local/cuda/bin)
# and the package index (the sdist, build tools, default models). Offline, point pip at a folder holding
# them (PIP_NO_INDEX=1 PIP_FIND_LINKS=/path) and OPENLMS_TEST_MODELS_DIR at the models; a CUDA wheel
# already in OPENLMS_WHEEL_CACHE (key printed below) skips the build (about 5-10 min on 16 cores).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
OUT_DIR=${OUT:-$PWD}

step "GPU and CUDA toolkit"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this check needs an NVIDIA GPU and driver"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader ||
  die "nvidia-smi lists no GPU"
if ! command -v nvcc >/dev/null; then export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"; fi
nvcc --version | tail -n 1 || die "nvcc not found" "install the CUDA toolkit or set CUDA_HOME"

step "Checking Python"
ensure_python
step "Python virtual environment (.venv)"
ensure_venv
step "Build choice"
backend=$("$VPY" scripts/llama_cmake_args.py --backend)
info "backend $backend; CMAKE_ARGS=$("$VPY" scripts/llama_cmake_args.py); key $("$VPY" scripts/llama_cmake_args.py --key)"
[[ $backend == cuda ]] || die "scripts/llama_cmake_args.py chose '$backend', not cuda" \
  "is CMAKE_ARGS or OPENLMS_LLAMA_CMAKE_ARGS set? unset them, or add -DGGML_CUDA=ON to them"
step "llama-cpp-python (CUDA build)"
t0=$SECONDS
ensure_llama
info "build or reuse took $((SECONDS - t0))s"
"$VPY" - <<'PY' || die "this llama.cpp build cannot offload to the GPU (llama_supports_gpu_offload() is false)"
import sys
import llama_cpp.llama_cpp as C
C.llama_backend_init()
print("    " + C.llama_print_system_info().decode().strip())
sys.exit(not C.llama_supports_gpu_offload())
PY
step "openlms (pip install -e .)"
ensure_openlms
step "Default models (openlms-setup-models)"
if [[ -z ${OPENLMS_TEST_MODELS_DIR:-} ]]; then ensure_models; else info "using $OPENLMS_TEST_MODELS_DIR"; fi

step "Offload and speed (bench/gpu_check.py)"
mkdir -p "$OUT_DIR"
"$VPY" bench/gpu_check.py --out "$OUT_DIR/gpu-check.json" "$@"
finish "figures in $OUT_DIR/gpu-check.json"
