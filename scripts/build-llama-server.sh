#!/usr/bin/env bash
# Build llama.cpp's `llama-server` for the peer benchmark (bench/peers.py), from the llama.cpp sources
# vendored in the llama-cpp-python sdist of the version installed in the venv, with the same CMake flags
# as the wheel (scripts/llama_cmake_args.py; never -march=native), as a Release build with shared libraries
# like the wheel. Only the llama-server target is built.
#   scripts/build-llama-server.sh [PYTHON]   # prints the path of the llama-server binary (last line)
# Cached in ${OPENLMS_CACHE:-~/.cache/openlms}/llama-server-<version>-<flags hash>/ (never committed);
# the sdist is kept in .../sdist/. A second run with the same version and flags only prints the path.
set -Eeuo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-$root/.venv/bin/python}
cache=${OPENLMS_CACHE:-$HOME/.cache/openlms}
jobs=${OPENLMS_BUILD_JOBS:-2}

log() { printf '[build-llama-server] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ver=$("$py" -c 'import llama_cpp; print(llama_cpp.__version__)') || die "llama_cpp is not importable by $py"
args=$("$py" "$root/scripts/llama_cmake_args.py") || die "cannot work out the CMake flags"
key=$(printf '%s\n%s\n%s\n' "$ver" "$args" "$(uname -m)" | "$py" -c \
  'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])')
dest="$cache/llama-server-$ver-$key"
bin="$dest/build/bin/llama-server"
if [[ -x $bin ]]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi

sdist="$cache/sdist/llama_cpp_python-$ver.tar.gz"
if [[ ! -f $sdist ]]; then
  log "downloading the llama-cpp-python $ver sdist"
  mkdir -p "$cache/sdist"
  "$py" -m pip download "llama-cpp-python==$ver" --no-deps --no-binary :all: -d "$cache/sdist" >&2 ||
    die "pip download llama-cpp-python==$ver failed (needs the package index)"
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.llama-server-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "llama-cpp-python $ver; CMake flags: $args"
log "building in $tmp (log: $tmp/build.log); about 5-15 min on 2 cores"
tar -xzf "$sdist" -C "$tmp"
src="$tmp/llama_cpp_python-$ver/vendor/llama.cpp"
[[ -f $src/CMakeLists.txt ]] || die "no vendored llama.cpp in $sdist"
mv "$src" "$tmp/llama.cpp" && rm -rf "$tmp/llama_cpp_python-$ver"
# shellcheck disable=SC2086  # $args is a list of flags
if ! env -u SOURCE_DATE_EPOCH cmake -S "$tmp/llama.cpp" -B "$tmp/build" $args -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_OPENSSL=OFF -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON >"$tmp/build.log" 2>&1 ||
  ! cmake --build "$tmp/build" --target llama-server -j "$jobs" >>"$tmp/build.log" 2>&1; then
  tail -n 30 "$tmp/build.log" >&2
  cp "$tmp/build.log" "$cache/llama-server-$ver-$key.failed.log" 2>/dev/null || true
  die "the build failed; log kept at $cache/llama-server-$ver-$key.failed.log"
fi
printf 'llama-cpp-python==%s\nCMAKE_ARGS=%s\nmachine=%s\nbuilt=%s\n' "$ver" "$args" "$(uname -m)" \
  "$(date -u +%FT%TZ)" >"$tmp/build-info.txt"
rm -rf "$tmp/llama.cpp/.git"
# The folder moves as a whole: the binary finds its libllama/libggml next to it ($ORIGIN RUNPATH).
"$py" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$tmp" "$dest" 2>/dev/null || true
trap - EXIT
rm -rf "$tmp"
[[ -x $bin ]] || die "no llama-server in $dest after the build"
"$bin" --version >/dev/null 2>&1 || die "$bin does not run (see: $bin --version)"
log "built: $bin"
echo "$bin"
