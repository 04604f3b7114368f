#!/usr/bin/env bash
# Stop what `make run` started (SIGTERM: services drain and exit).
cd "$(dirname "$0")/.."
for pidfile in .run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    pkill -TERM -P "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
    echo "stopped $(basename "$pidfile" .pid)"
  fi
  rm -f "$pidfile"
done
