#!/usr/bin/env bash
# Set up ./.venv (like setup.sh, with the test extras, but no server), then check the import-layer
# contracts (lint-imports) and run pytest. Extra arguments go to pytest, e.g.:
#   ./scripts/test.sh -x -k chat        ./scripts/test.sh -m "not e2e"
# Exits non-zero if the set-up, the contracts or any test fails.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "Checking Python"
ensure_python
step "Python virtual environment (.venv)"
ensure_venv
step "llama-cpp-python (llama.cpp build for this machine)"
ensure_llama
step "openlms with test extras (pip install -e '.[test]')"
ensure_openlms test
step "Default models (openlms-setup-models)"
ensure_models
step "Extra test model (openlms-setup-models --only qwen2.5-coder-0.5b-instruct, ~490 MB)"
# the tool-calling e2e tests (tests/e2e/test_qwen_tools_e2e.py) need a model that picks tools itself
rc_extra=0
"$VENV/bin/openlms-setup-models" --only qwen2.5-coder-0.5b-instruct || rc_extra=$?
((rc_extra == 0)) || die "openlms-setup-models --only qwen2.5-coder-0.5b-instruct failed (exit $rc_extra)" \
  "see its message above; then run again"

step "Chromium for the browser tests (tests/browser)"
ensure_chromium

step "Web app for the browser tests (scripts/build-app.sh)"
rc_app=0
scripts/build-app.sh || rc_app=$?
((rc_app == 0)) || info "WARNING: the app is not built (see above): the browser tests (tests/browser) will fail"

step "Static checks (lint-imports, ruff, mypy --strict, svelte-check on app/)"
rc_lint=0
"$VENV/bin/lint-imports" || rc_lint=$?
"$VENV/bin/ruff" check src tests bench scripts || rc_lint=$?
"$VENV/bin/mypy" src || rc_lint=$?
if [[ -d app/node_modules ]]; then  # the app's TypeScript and Svelte (installed by scripts/build-app.sh)
  (cd app && npm run --silent check) || rc_lint=$?
else
  info "WARNING: app/node_modules is missing (the app could not be built): its type check is skipped"
fi
step "Tests (pytest${*:+ $*})"
rc_test=0
"$VPY" -m pytest "$@" || rc_test=$?
finish "lint-imports exit $rc_lint, pytest exit $rc_test"

if ((rc_lint != 0)); then info "FAILED: static checks (lint-imports, ruff check, mypy src, svelte-check in app/)"; fi
if ((rc_test != 0)); then info "FAILED: tests (re-run: ./scripts/test.sh --lf)"; fi
if ((rc_lint != 0 || rc_test != 0)); then exit 1; fi
info "all checks passed"
