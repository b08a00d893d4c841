# shellcheck shell=bash
# Helpers shared by scripts/setup.sh, scripts/test.sh and scripts/install-llama-cpp.sh.
# Source it from the repo root (the callers cd there) after `set -Eeuo pipefail`.

ROOT=$(pwd -P)
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
_STEP="" _STEP_T0=$SECONDS

info() { printf '    %s\n' "$*"; }

step() {  # step "title": close the previous step and start the next
  _step_close
  _STEP=$1 _STEP_T0=$SECONDS
  printf '\n==> [%4ss] %s\n' "$SECONDS" "$1"
}
_step_close() { if [[ -n $_STEP ]]; then info "done in $((SECONDS - _STEP_T0))s"; fi; }
finish() { _step_close; _STEP=""; printf '\n==> [%4ss] %s\n' "$SECONDS" "${1:-all done}"; }

die() {  # die "what failed" ["what to do" ...]
  printf '\nERROR (step "%s", after %ss): %s\n' "${_STEP:-start}" "$SECONDS" "$1" >&2
  shift
  local hint
  for hint in "$@"; do printf '  -> %s\n' "$hint" >&2; done
  exit 1
}
_on_err() {  # unexpected failure of a plain command (set -e)
  printf '\nERROR (step "%s", after %ss): command failed with exit %s: %s\n' \
    "${_STEP:-start}" "$SECONDS" "$1" "$2" >&2
  printf '  -> fix the cause above and re-run; finished steps are skipped on a re-run\n' >&2
}
trap '_on_err $? "$BASH_COMMAND"' ERR

pip_q() {  # pip_q PYTHON ARGS...: quiet pip, minus the harmless warnings about file:// index folders
  local py=$1
  shift
  "$py" -m pip -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

ensure_python() {  # PYTHON: the interpreter that creates .venv (override with OPENLMS_PYTHON)
  PYTHON=${OPENLMS_PYTHON:-python3}
  command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found" "install Python 3.11+ or set OPENLMS_PYTHON"
  local found
  found=$("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>&1) || true
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null ||
    die "openlms needs Python 3.11 or newer; '$PYTHON' is: $found" \
      "install Python 3.11+ and run again with OPENLMS_PYTHON=/path/to/python3.11"
  PYTHON=${found% *}
  info "Python ${found##* } at $PYTHON"
}

ensure_venv() {
  if [[ -x $VPY ]]; then
    "$VPY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null ||
      die "$VENV is broken or older than Python 3.11" "remove it (rm -rf .venv) and run again"
    info "reusing $VENV ($("$VPY" -V 2>&1))"
  else
    [[ ! -e $VENV ]] || die "$VENV exists but has no bin/python" "remove it (rm -rf .venv) and run again"
    "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed" "on Debian/Ubuntu: apt-get install python3-venv"
    info "created $VENV"
  fi
}

ensure_llama() {  # ensure_llama [PYTHON]: llama-cpp-python for this machine (CPU, CUDA or Metal) in PYTHON's venv
  local py=${1:-$VPY} tool="$ROOT/scripts/llama_cmake_args.py" ver backend args key prefix stamp
  if ! { ver=$("$py" "$tool" --pin) && backend=$("$py" "$tool" --backend) && args=$("$py" "$tool") &&
    key=$("$py" "$tool" --key); }; then
    die "cannot work out the llama.cpp build flags" "see the error above (scripts/llama_cmake_args.py)"
  fi
  prefix=$("$py" -c 'import sys; print(sys.prefix)')
  stamp="$prefix/.openlms-llama-wheel"
  info "llama-cpp-python $ver; backend $backend; CMAKE_ARGS=$args"
  if [[ -f $stamp && $(<"$stamp") == "$key" ]] &&
    "$py" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$ver')" 2>/dev/null; then
    info "already installed (wheel key $key)"
  else
    _llama_wheel "$py" "$ver" "$args" "$key" "$backend"
    pip_q "$py" install --no-deps --force-reinstall "$WHEEL" || die "installing $WHEEL failed"
    pip_q "$py" install 'numpy>=1.20.0' 'jinja2>=2.11.3' 'diskcache>=5.6.1' 'typing-extensions>=4.5.0' ||
      die "installing llama-cpp-python's dependencies failed" "check access to the package index"
  fi
  "$py" "$ROOT/scripts/llama_smoke.py" "$ver" ||
    die "the llama-cpp-python smoke check failed" \
      "delete ${OPENLMS_WHEEL_CACHE:-$HOME/.cache/openlms/wheels}/$key and run again to rebuild"
  echo "$key" >"$stamp"
}

_ncpu() { nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2; }  # nproc is GNU-only (not macOS)

_llama_wheel() {  # sets WHEEL to the cached wheel for this key; builds it from the sdist on a miss
  local py=$1 ver=$2 args=$3 key=$4 backend=${5:-cpu} cache=${OPENLMS_WHEEL_CACHE:-$HOME/.cache/openlms/wheels} tmp t0=$SECONDS
  WHEEL=$(compgen -G "$cache/$key/llama_cpp_python-$ver-*.whl" | head -n 1) || true
  if [[ -n $WHEEL ]]; then info "cached wheel: $WHEEL"; return; fi
  mkdir -p "$cache" && tmp=$(mktemp -d "$cache/.build-$key.XXXXXX") && chmod 755 "$tmp"
  info "no cached wheel for key $key: building from source (CPU: about 4-8 min on 2 cores; CUDA: longer)"
  info "build log: $tmp/build.log"
  if ! env -u SOURCE_DATE_EPOCH CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(_ncpu)" \
    "$py" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python==$ver" -w "$tmp" >"$tmp/build.log" 2>&1; then
    tail -n 25 "$tmp/build.log" >&2
    die "building llama-cpp-python $ver failed; full log: $tmp/build.log" \
      "it needs a C/C++ compiler and cmake (Debian: apt-get install build-essential cmake)" \
      "and access to the package index for the sdist and its build tools"
  fi
  printf 'llama-cpp-python==%s\nbackend=%s\nCMAKE_ARGS=%s\npython=%s\nmachine=%s\nbuilt=%s in %ss\n' "$ver" \
    "$backend" "$args" \
    "$("$py" -c 'import sys; print(sys.implementation.cache_tag)')" "$(uname -m)" "$(date -u +%FT%TZ)" \
    "$((SECONDS - t0))" >"$tmp/build-info.txt"
  # rename(2) fails on an existing folder: a parallel run may have stored it first (GNU mv -T, portably)
  "$py" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$tmp" "$cache/$key" 2>/dev/null || rm -rf "$tmp"
  WHEEL=$(compgen -G "$cache/$key/llama_cpp_python-$ver-*.whl" | head -n 1) ||
    die "no wheel in $cache/$key after the build" "remove that folder and run again"
  info "built in $((SECONDS - t0))s, cached: $WHEEL"
}

ensure_openlms() {  # ensure_openlms [EXTRAS]: pip install -e ".[EXTRAS]" unless already done for this pyproject
  local extras=${1:-} hash stamp
  hash=$("$VPY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' \
    pyproject.toml)  # sha256sum is not on macOS
  stamp="$VENV/.openlms-editable${extras:+-$extras}"
  if [[ -f $stamp && $(<"$stamp") == "$hash" ]] && "$VPY" - "$ROOT" <<'EOF' 2>/dev/null; then
import os, sys, openlms
sys.exit(not os.path.realpath(openlms.__file__).startswith(os.path.join(sys.argv[1], "src", "")))
EOF
    info "already installed (pyproject.toml unchanged)"
    return
  fi
  pip_q "$VPY" install -e ".${extras:+[$extras]}" ||
    die "pip install -e '.${extras:+[$extras]}' failed" "see pip's message above"
  echo "$hash" >"$stamp"
  if [[ -n $extras ]]; then echo "$hash" >"$VENV/.openlms-editable"; fi  # extras include the base
  info "installed openlms $("$VPY" -c 'import importlib.metadata as m; print(m.version("openlms"))')"
}

require_script() {  # require_script NAME: the venv's console script NAME exists and its target imports
  [[ -x $VENV/bin/$1 ]] || die "$VENV/bin/$1 is missing" \
    "it is declared in pyproject.toml [project.scripts]; run: rm -f .venv/.openlms-editable*; then re-run"
  if ! "$VPY" - "$1" <<'EOF'; then
import sys
from importlib.metadata import entry_points
eps = [ep for ep in entry_points(group="console_scripts") if ep.name == sys.argv[1]]
if not eps:
    sys.exit(f"no console script {sys.argv[1]!r} in the installed metadata")
try:
    eps[0].load()
except Exception as e:
    sys.exit(f"{sys.argv[1]} -> {eps[0].value}: {type(e).__name__}: {e}")
EOF
    die "the console script '$1' is not usable yet (see above)" \
      "its code lives in src/openlms (pyproject.toml [project.scripts]); fix it and run again"
  fi
}

ensure_models() {  # the default models, via openlms-setup-models (idempotent itself)
  require_script openlms-setup-models
  local rc=0
  "$VENV/bin/openlms-setup-models" || rc=$?
  ((rc == 0)) || die "openlms-setup-models failed (exit $rc)" "see its message above; then run again"
}

ensure_chromium() {  # the system chromium that the browser tests (tests/browser) drive with Playwright
  local found=${OPENLMS_CHROMIUM:-}
  if [[ -n $found && ! -x $found ]]; then
    die "OPENLMS_CHROMIUM=$found is not an executable file" "point it at a Chromium/Chrome binary, or unset it"
  fi
  [[ -n $found ]] || found=$(command -v chromium || command -v chromium-browser || true)
  if [[ -n $found ]]; then
    info "chromium at $found ($("$found" --version 2>/dev/null | head -n 1))"
    _ensure_cjk_font
    return
  fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    info "installing Debian's chromium (apt-get install chromium; Playwright's own browser download is not used)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
      die "apt-get update failed" "check access to the Debian package mirror"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null ||
      die "apt-get install chromium failed" "see apt-get's message above"
    info "chromium at $(command -v chromium) ($(chromium --version 2>/dev/null | head -n 1))"
    return
  fi
  info "WARNING: no chromium found and cannot install it here (needs root and apt-get):"
  info "the browser tests (tests/browser) will fail. Install chromium (Debian/Ubuntu: apt-get install chromium),"
  info "or point OPENLMS_CHROMIUM at a Chromium/Chrome binary, or deselect them: ./scripts/test.sh -m 'not browser'"
}

_ensure_cjk_font() {  # a Chinese font, so that the browser tests' zh screenshots are readable (not boxes)
  command -v fc-list >/dev/null && [[ -n $(fc-list :lang=zh 2>/dev/null | head -n 1) ]] && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    info "installing a Chinese font for the screenshots (apt-get install fonts-wqy-microhei)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 ||
      info "WARNING: apt-get install fonts-wqy-microhei failed: zh screenshots will show boxes (tests unaffected)"
  fi
}
