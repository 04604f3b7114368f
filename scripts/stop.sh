#!/usr/bin/env bash
# Stop what `make run` started (SIGTERM: services drain and exit) and wait for it to
# exit, so that a `make run` right after finds the ports free. The S3 server goes
# last: the services may still write to it while they drain.
cd "$(dirname "$0")/.."
stop() { # pid files...
  local stopping=() pidfile pid
  for pidfile in "$@"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      pkill -TERM -P "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
      stopping+=("$pid")
      echo "stopping $(basename "$pidfile" .pid)"
    fi
    rm -f "$pidfile"
  done
  # The services' drain takes at most WAYBILL_SHUTDOWN_GRACE_SECONDS (30 s).
  for pid in "${stopping[@]}"; do
    for _ in $(seq 1 90); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && echo "pid $pid is still running" >&2
  done
  return 0
}
stop $(ls .run/*.pid 2>/dev/null | grep -v '/s3\.pid$')
stop .run/s3.pid
