#!/usr/bin/env bash
# Run the lmstudio SDK's own test suite (the `tests/` of the lmstudio 1.5.0 sdist from PyPI) against
# openlms, from a copy kept outside the project (default ~/.cache/openlms/sdk-suite).
#
#   ./scripts/sdk-suite.sh               # the 202 tests marked `lmstudio` (they need a server)
#   ./scripts/sdk-suite.sh -k embedding  # extra arguments go to pytest
#
# The suite's test models are mapped to openlms's default models (scripts/sdk_suite_patch.py). It starts
# its own openlms server in a temporary home (models from OPENLMS_MODELS_DIR, default
# ~/.lmstudio/models) on the SDK's default port 41343, which must be free, loads the models the way the
# suite's `tests/load_models.py` does, runs pytest, and writes results/summary.txt (one line per
# failure) and results/junit.xml under the work folder. Needs ./scripts/setup.sh to have run.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${OPENLMS_SDK_SUITE_DIR:-$HOME/.cache/openlms/sdk-suite}"
LMS="$ROOT/.venv/bin/lms"
SDK_PORT=41343
MODELS_DIR="${OPENLMS_MODELS_DIR:-$HOME/.lmstudio/models}"
RESULTS="$WORK/results"
PIP_PINS=(lmstudio==1.5.0 pytest==8.4.1 pytest-asyncio==1.1.0 pytest-subtests==0.14.2 pytest-timeout==2.4.0)

[[ -x "$LMS" ]] || { echo "ERROR: $LMS is missing; run ./scripts/setup.sh first." >&2; exit 2; }
mkdir -p "$WORK/sdist" "$RESULTS"

echo "== the suite: lmstudio 1.5.0 sdist -> $WORK/lmstudio-1.5.0 (patched to openlms's default models)"
if ! compgen -G "$WORK/sdist/lmstudio-1.5.0.tar.gz" >/dev/null; then
    "$ROOT/.venv/bin/pip" download --quiet --no-deps --no-binary :all: -d "$WORK/sdist" lmstudio==1.5.0 || exit 2
fi
rm -rf "$WORK/lmstudio-1.5.0"
tar -xzf "$WORK/sdist/lmstudio-1.5.0.tar.gz" -C "$WORK" || exit 2
"$ROOT/.venv/bin/python" "$ROOT/scripts/sdk_suite_patch.py" "$WORK/lmstudio-1.5.0/tests" || exit 2
# The sdist leaves out examples/plugins; the suite's 3 plugin tests (plugins are out of scope) need it.
mkdir -p "$WORK/lmstudio-1.5.0/examples/plugins"

if [[ ! -x "$WORK/.venv/bin/python" ]]; then
    echo "== venv for the suite: ${PIP_PINS[*]}"
    python3 -m venv "$WORK/.venv" && "$WORK/.venv/bin/pip" install --quiet "${PIP_PINS[@]}" || exit 2
fi
PY="$WORK/.venv/bin/python"

# Test modules that need 41343 take turns through this lock (tests/support/server.py); so does this run.
exec 9>"${TMPDIR:-/tmp}/openlms-sdk-port-41343.lock"
flock -w 1800 9 || { echo "ERROR: port $SDK_PORT stayed locked by another run." >&2; exit 2; }
if "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("127.0.0.1", 41343)) != 0)'; then
    echo "ERROR: port $SDK_PORT is in use; the suite would talk to whatever listens there. Stop it first." >&2
    exit 2
fi
HOME_DIR="$(mktemp -d "${TMPDIR:-/tmp}/openlms-sdk-suite.XXXXXX")"
export OPENLMS_HOME="$HOME_DIR" OPENLMS_MODELS_DIR="$MODELS_DIR"
HTTP_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() {
    "$LMS" server stop >/dev/null 2>&1 || true
    cp -f "$HOME_DIR/server-logs/openlms-server.log" "$RESULTS/server.log" 2>/dev/null || true
    rm -rf "$HOME_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== openlms server on $HTTP_PORT and $SDK_PORT (home $HOME_DIR, models $MODELS_DIR)"
"$LMS" server start --port "$HTTP_PORT" --sdk-port "$SDK_PORT" || exit 3
cd "$WORK/lmstudio-1.5.0" || exit 2
echo "== loading the suite's models (python -m tests.load_models)"
timeout 600 "$PY" -m tests.load_models > "$RESULTS/load.log" 2>&1 || { cat "$RESULTS/load.log"; exit 3; }

echo "== pytest -m lmstudio"
"$PY" -m pytest -p no:cacheprovider -m lmstudio --timeout=300 -q -rf \
    --junitxml="$RESULTS/junit.xml" -o junit_family=xunit2 "$@" 2>&1 | tee "$RESULTS/pytest.log"
RC=${PIPESTATUS[0]}
"$ROOT/.venv/bin/python" - "$RESULTS/junit.xml" > "$RESULTS/summary.txt" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET

counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
lines = []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    kind = "passed"
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            kind = {"failure": "failed"}.get(child.tag, child.tag)
            message = (child.get("message") or child.text or "").strip().splitlines()
            lines.append(f"{kind.upper():7} {case.get('classname')}::{case.get('name')}: {message[0][:200] if message else ''}")
            break
    counts[kind] += 1
print(" ".join(f"{v} {k}" for k, v in counts.items()) + f" ({sum(counts.values())} total)")
print("\n".join(sorted(lines)))
PYEOF
echo "== $(head -1 "$RESULTS/summary.txt")   (details: $RESULTS/summary.txt)"
exit "$RC"
