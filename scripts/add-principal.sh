#!/usr/bin/env bash
# The RabbitMQ user of a service account on the local broker, with the permissions a
# direct publisher gets (docs/PRINCIPALS.md):  bash scripts/add-principal.sh lims
# Its password: WAYBILL_AMQP_PASSWORD_<USER> (capitals, '-' as '_'), or the development
# one (waybill-dev). Then make the service account: POST /api/service-accounts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh  # say, as_root
[ $# -ge 1 ] || { echo "usage: $0 AMQP_USER..." >&2; exit 2; }
args=()
for user in "$@"; do args+=(--service-account "$user"); done
definitions=$(mktemp --suffix=.json)
trap 'rm -f "$definitions"' EXIT
uv run --frozen python -m waybill_shared.messaging.definitions --service-accounts-only "${args[@]}" >"$definitions"
chmod 644 "$definitions"  # rabbitmqctl reads it as the rabbitmq user
as_root rabbitmqctl -q import_definitions "$definitions" >/dev/null
say "RabbitMQ user(s) $*: may publish commands and read their own events on vhost waybill"
