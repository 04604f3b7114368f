"""What RabbitMQ must hold for one deployment, as a definitions document: the vhost,
the topology (exchanges, queues, bindings), Waybill's own users with the least
permissions each needs, and the users of service accounts.

    uv run python -m waybill_shared.messaging.definitions > definitions.json
    rabbitmqctl import_definitions "$PWD/definitions.json"

Importing is idempotent (the document says what exists, not what to add). The same
document is loaded by the compose file's RabbitMQ at boot, and by the tests into a
vhost of their own. Passwords come from `WAYBILL_AMQP_PASSWORD_<USER>` (the user's
name in capitals, `-` as `_`); in development they default to the development one.

Permissions (configure / write / read regexes on the vhost, checked by the broker):
- nobody configures anything: the topology comes from this document;
- the gateway writes commands (and replays dead letters through the default exchange),
  reads the dead-letter queues;
- a worker reads its own queue, writes events and dead letters;
- the tracker reads the events and provenance queues, writes commands (re-dispatch)
  and dead letters;
- a service account writes commands, reads the events exchange through queues of its
  own (server-named, or named `<prefix>.client.<user>.*`), and its topic permission
  admits only routing keys `task.<its user>.*`: binding to another principal's events
  is refused by the broker. It cannot publish events.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from waybill_shared.messaging.topology import Service, Topology
from waybill_shared.settings import DEV_AMQP_PASSWORD, WaybillSettings, get_settings

NOTHING = "^$"


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


FULL = Permissions(".*", ".*", ".*")


@dataclass(frozen=True)
class TopicPermissions:
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class AmqpUser:
    name: str
    password: str
    permissions: Permissions
    topic: TopicPermissions | None = None
    tags: tuple[str, ...] = field(default=())


def exactly(*names: str) -> str:
    """A regex matching exactly these resource names."""
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


def service_permissions(service: Service, topology: Topology) -> Permissions:
    """The least a Waybill service needs on the vhost."""
    t = topology
    consumed = [q.name for q in t.queues if q.consumer == service]
    if service == "gateway":
        dead = [q.dead_letter_queue for q in t.queues]
        return Permissions(NOTHING, exactly(t.commands_exchange, "amq.default"), exactly(*dead))
    if service == "tracker":
        writes = exactly(t.commands_exchange, t.dead_letter_exchange)
        return Permissions(NOTHING, writes, exactly(*consumed))
    writes = exactly(t.events_exchange, t.dead_letter_exchange)
    return Permissions(NOTHING, writes, exactly(*consumed))


def service_account_permissions(
    user: str, topology: Topology
) -> tuple[Permissions, TopicPermissions]:
    """A direct publisher: commands in, its own events out, nothing else."""
    own_queues = r"amq\.gen-.*|" + re.escape(topology.client_queue_prefix(user)) + ".*"
    permissions = Permissions(
        configure=f"^({own_queues})$",
        write=f"^({re.escape(topology.commands_exchange)}|{own_queues})$",
        read=f"^({re.escape(topology.events_exchange)}|{own_queues})$",
    )
    # RabbitMQ expands {username}: the same pattern admits each user to its own keys.
    topic = TopicPermissions(topology.events_exchange, write=NOTHING, read=r"^task\.{username}\.")
    return permissions, topic


def service_user_names(settings: WaybillSettings) -> dict[Service, str]:
    return {
        "gateway": settings.amqp_gateway_user,
        "export-worker": settings.amqp_export_worker_user,
        "extraction": settings.amqp_extraction_user,
        "tracker": settings.amqp_tracker_user,
    }


def service_users(
    settings: WaybillSettings, topology: Topology, password: Callable[[str], str]
) -> list[AmqpUser]:
    """Waybill's own four users, each with its least permissions."""
    return [
        AmqpUser(name, password(name), service_permissions(service, topology))
        for service, name in service_user_names(settings).items()
    ]


def service_account_user(name: str, password: str, topology: Topology) -> AmqpUser:
    permissions, topic = service_account_permissions(name, topology)
    return AmqpUser(name, password, permissions, topic)


def definitions(
    vhost: str,
    topology: Topology,
    users: Iterable[AmqpUser],
    *,
    grants: Mapping[str, Permissions] | None = None,
) -> dict[str, Any]:
    """The definitions document (RabbitMQ's import format) for one vhost. `grants`
    gives permissions on it to users that exist already (left as they are)."""
    users = list(users)
    granted = [(u.name, u.permissions) for u in users] + list((grants or {}).items())
    t = topology
    exchanges = [
        (t.commands_exchange, "direct"),
        (t.events_exchange, "topic"),
        (t.dead_letter_exchange, "direct"),
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for spec in t.queues:
        queues.append(_queue(vhost, spec.name, t.queue_arguments(spec)))
        queues.append(_queue(vhost, spec.dead_letter_queue, {"x-queue-type": "quorum"}))
        bindings += [_binding(vhost, spec.exchange, spec.name, key) for key in spec.routing_keys]
        bindings.append(_binding(vhost, t.dead_letter_exchange, spec.dead_letter_queue, spec.name))
    return {
        "vhosts": [{"name": vhost}],
        "users": [{"name": u.name, "password": u.password, "tags": list(u.tags)} for u in users],
        "permissions": [
            {
                "user": name,
                "vhost": vhost,
                "configure": permissions.configure,
                "write": permissions.write,
                "read": permissions.read,
            }
            for name, permissions in granted
        ],
        "topic_permissions": [
            {
                "user": u.name,
                "vhost": vhost,
                "exchange": u.topic.exchange,
                "write": u.topic.write,
                "read": u.topic.read,
            }
            for u in users
            if u.topic is not None
        ],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, kind in exchanges
        ],
        "queues": queues,
        "bindings": bindings,
    }


def _queue(vhost: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": arguments,
    }


def _binding(vhost: str, exchange: str, queue: str, key: str) -> dict[str, Any]:
    return {
        "source": exchange,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": {},
    }


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names ("/" when it names none)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def password_from_env(user: str, settings: WaybillSettings) -> str:
    variable = "WAYBILL_AMQP_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", user).upper()
    password = os.environ.get(variable)
    if password:
        return password
    if settings.environment == "production":
        raise SystemExit(f"{variable} is not set (no default password outside development)")
    return DEV_AMQP_PASSWORD


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vhost", default=None, help="default: the vhost of WAYBILL_AMQP_URL")
    parser.add_argument(
        "--service-account",
        action="append",
        default=[],
        metavar="USER",
        help="also the AMQP user of a service account (repeatable)",
    )
    parser.add_argument(
        "--service-accounts-only",
        action="store_true",
        help="only the --service-account users and their permissions (for a vhost set up already)",
    )
    parser.add_argument(
        "--administrator",
        metavar="USER",
        help="also a user with every right on the vhost and the management UI",
    )
    args = parser.parse_args(argv)
    topology = Topology(settings.amqp_prefix, settings.amqp_delivery_limit)

    def password(user: str) -> str:
        return password_from_env(user, settings)

    users = [] if args.service_accounts_only else service_users(settings, topology, password)
    users += [service_account_user(name, password(name), topology) for name in args.service_account]
    if args.administrator:
        users.append(
            AmqpUser(
                args.administrator, password(args.administrator), FULL, tags=("administrator",)
            )
        )
    document = definitions(args.vhost or vhost_of(settings.amqp_url), topology, users)
    if args.service_accounts_only:
        document = {k: document[k] for k in ("users", "permissions", "topic_permissions")}
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
