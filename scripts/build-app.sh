#!/usr/bin/env bash
# Build the web app (app/: Svelte + Vite + TypeScript) into src/openlms/webapp/static, which the server
# serves at / and the wheel carries (docs/app.md). Skips the build when its output is newer than every
# source file. Node.js 18+ and npm: installed from Debian's packages when missing and run as root.
#   ./scripts/build-app.sh           build if needed
#   ./scripts/build-app.sh --force   build anyway
set -Eeuo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

APP=app
OUT=src/openlms/webapp/static
SOURCES=("$APP/src" "$APP/index.html" "$APP/package.json" "$APP/package-lock.json" "$APP/vite.config.ts"
  "$APP/svelte.config.js" "$APP/tsconfig.json")

up_to_date() {  # the build's index.html is newer than every source file
  [[ -f $OUT/index.html ]] || return 1
  [[ -z $(find "${SOURCES[@]}" -newer "$OUT/index.html" -print -quit 2>/dev/null) ]]
}

node_ok() {  # node 18+ and npm on PATH
  command -v node >/dev/null && command -v npm >/dev/null || return 1
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'
}

ensure_node() {
  node_ok && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    info "installing Node.js from Debian's packages (apt-get install nodejs npm)"
    local pkgs=(nodejs npm)
    command -v node >/dev/null && pkgs=(npm)  # keep an installed node (e.g. NodeSource's, which has npm)
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
      die "apt-get update failed" "check access to the Debian package mirror"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
      die "apt-get install ${pkgs[*]} failed" "see apt-get's message above"
  fi
  node_ok || die "building the app needs Node.js 18 or newer and npm (found: $(node --version 2>/dev/null || echo none))" \
    "install them (Debian/Ubuntu: sudo apt-get install nodejs npm; or https://nodejs.org), then run again" \
    "without them, the server still runs: / shows how to build the app, and every API works"
}

if [[ ${1:-} != --force ]] && up_to_date; then
  info "the app is built and up to date ($OUT)"
  exit 0
fi
ensure_node
info "Node.js $(node --version), npm $(npm --version)"
if [[ ! -f $APP/node_modules/.package-lock.json || $APP/package-lock.json -nt $APP/node_modules/.package-lock.json ]]; then
  info "npm ci (app/package-lock.json)"
  (cd "$APP" && npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci failed in app/" "see npm's message above; check access to the npm registry"
fi
(cd "$APP" && npm run --silent build -- --logLevel warn) ||
  die "the app's build (npm run build in app/) failed" "see the message above"
info "built into $OUT ($(find "$OUT" -type f | wc -l) files)"
