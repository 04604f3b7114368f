#!/usr/bin/env bash
# Builds the web UI (services/gateway/ui, a Vue app) into services/gateway/ui/dist,
# which the gateway serves at /. Skipped when the build is newer than every source.
# Needs Node.js 20+ and npm (installed from apt when missing); the packages come from
# package-lock.json (npm ci), nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
UI=services/gateway/ui
stamp="$UI/dist/index.html"
if [ -f "$stamp" ] && [ -z "$(find "$UI/src" "$UI/index.html" "$UI/package-lock.json" \
    "$UI/vite.config.ts" "$UI/tsconfig.json" -newer "$stamp" -print -quit)" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm from apt (to build the web UI)"
  apt_install nodejs npm
fi
say "building the web UI (npm ci && npm run build in $UI)"
(cd "$UI" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
