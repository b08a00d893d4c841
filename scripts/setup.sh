#!/usr/bin/env bash
# Set up openlms in ./.venv, start the server in the background and load the default chat model.
# Idempotent: a re-run skips what is already done (a few seconds). Needs Python 3.11+, a C/C++ compiler,
# cmake and access to the package index (the first run builds llama.cpp: about 5 min on 2 cores).
#   OPENLMS_PYTHON      interpreter that creates .venv (default python3)
#   OPENLMS_WHEEL_CACHE where the llama-cpp-python wheel is kept (default ~/.cache/openlms/wheels)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

MODEL=smollm2-135m-instruct
BASE=http://127.0.0.1:1234  # where `lms server start` listens by default

server_up() {  # the OpenAI-compatible API answers
  "$VPY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' \
    "$BASE/v1/models" >/dev/null 2>&1
}
model_loaded() {  # LM Studio's REST API lists the model as loaded (so a re-run does not load a 2nd copy)
  "$VPY" - "$BASE/api/v0/models" "$MODEL" 2>/dev/null <<'PY'
import json, sys, urllib.request
data = json.load(urllib.request.urlopen(sys.argv[1], timeout=5)).get("data", [])
sys.exit(not any(m.get("id") == sys.argv[2] and m.get("state") == "loaded" for m in data))
PY
}

step "Checking Python"
ensure_python
step "Python virtual environment (.venv)"
ensure_venv
step "llama-cpp-python (llama.cpp build for this machine)"
ensure_llama
step "openlms (pip install -e .)"
ensure_openlms
step "Default models (openlms-setup-models)"
ensure_models

step "Web app (scripts/build-app.sh: app/ -> src/openlms/webapp/static)"
rc_app=0
scripts/build-app.sh || rc_app=$?
((rc_app == 0)) || info "WARNING: the app is not built (see above); the server runs without it and / says how to build it"

step "Server ($BASE)"
require_script lms
if server_up; then
  info "already running"
else
  rc=0
  timeout 120 "$VENV/bin/lms" server start --port 1234 || rc=$?
  ((rc == 0)) || die "'lms server start' failed (exit $rc)" "see its message above;" \
    "is port 1234 taken by another program? (ss -ltnp | grep 1234)"
  for _ in $(seq 60); do server_up && break; sleep 0.5; done
  server_up || die "the server did not answer at $BASE/v1/models within 30 s" "check: .venv/bin/lms server status"
  info "started"
fi

step "Default chat model ($MODEL)"
if model_loaded; then
  info "already loaded"
else
  rc=0
  "$VENV/bin/lms" load "$MODEL" || rc=$?
  ((rc == 0)) || die "'lms load $MODEL' failed (exit $rc)" "see its message above; models: .venv/bin/lms ls"
fi
finish "openlms is running at $BASE with $MODEL loaded"

cat <<USAGE

Try it:
  curl -s $BASE/v1/chat/completions -H 'Content-Type: application/json' -d '{"model": "$MODEL", "messages": [{"role": "user", "content": "Say hello in one sentence."}]}'

More:
  .venv/bin/lms app            # open the app in the browser
  .venv/bin/lms ps             # loaded models
  .venv/bin/lms ls             # models on disk
  .venv/bin/lms server stop    # stop the server
  ./scripts/test.sh            # run the tests (no server needed)

Open the app in your browser: $BASE/   (or run: .venv/bin/lms app)
USAGE
