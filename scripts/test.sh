#!/usr/bin/env bash
# `make test`: the same set-up as `make run`, then the whole test suite against the
# real PostgreSQL, RabbitMQ and a local S3 server (the tests start their own services
# on free ports, in their own database and queue prefix, and clean up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x scripts/install-deploy-tools.sh ] && bash scripts/install-deploy-tools.sh
# The web UI's tests drive Debian's chromium headless (tests/ui); no browser is downloaded.
if ! command -v chromium >/dev/null 2>&1; then
  source scripts/lib.sh
  say "installing chromium from apt (for the web UI's tests)"
  apt_install chromium
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
uv run --frozen pytest "$@"
