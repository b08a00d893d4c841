#!/usr/bin/env bash
# Install llama-cpp-python (the version pinned in pyproject.toml) into a venv, built for this machine:
# CUDA when nvcc and an NVIDIA GPU are present, Metal on Apple Silicon, the portable CPU build otherwise.
#   scripts/install-llama-cpp.sh            # into ./.venv (created if missing)
#   scripts/install-llama-cpp.sh PYTHON     # into the venv of that python
# The wheel is built once with CMake flags from scripts/llama_cmake_args.py and kept in
# ${OPENLMS_WHEEL_CACHE:-~/.cache/openlms/wheels}/<key>/; setup.sh and test.sh call the same code.
set -Eeuo pipefail
py=${1:-}
if [[ -n $py && $py != /* ]]; then py="$PWD/$py"; fi  # absolute, but keep the venv symlink
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [[ -z $py ]]; then
  step "Checking Python"
  ensure_python
  step "Python virtual environment (.venv)"
  ensure_venv
  py=$VPY
fi
step "llama-cpp-python (llama.cpp build for this machine)"
ensure_llama "$py"
finish
