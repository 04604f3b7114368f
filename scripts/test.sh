#!/usr/bin/env bash
# `make test`: the same set-up as `make run`, then the whole test suite against the
# real PostgreSQL, RabbitMQ and a local S3 server (the tests start their own services
# on free ports, in their own database and queue prefix, and clean up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x scripts/install-deploy-tools.sh ] && bash scripts/install-deploy-tools.sh
uv run --frozen pytest "$@"
