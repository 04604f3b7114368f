"""A vhost of the test's own on a RabbitMQ node: Waybill's topology, its four service
users with the permissions they have in production, the principals a test adds, all
made with `rabbitmqctl import_definitions` (one call) and removed after.

Users are global to a node, so every name carries the vhost's random token; the node
may be the machine's shared one or a throwaway RabbitNode."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pika

from waybill_shared.messaging.definitions import (
    FULL,
    AmqpUser,
    definitions,
    service_account_user,
    service_permissions,
)
from waybill_shared.messaging.topology import SERVICES, Topology
from waybill_shared.settings import amqp_user_of

SERVICE_USER_SETTINGS: dict[str, str] = {
    "gateway": "WAYBILL_AMQP_GATEWAY_USER",
    "export-worker": "WAYBILL_AMQP_EXPORT_WORKER_USER",
    "extraction": "WAYBILL_AMQP_EXTRACTION_USER",
    "tracker": "WAYBILL_AMQP_TRACKER_USER",
}


@dataclass(frozen=True)
class Rabbitmqctl:
    """rabbitmqctl for one node: the machine's (no name) or a RabbitNode's."""

    node: str | None = None
    env: dict[str, str] | None = None

    def argv(self, *args: str) -> list[str]:
        return ["rabbitmqctl", *(["-n", self.node] if self.node else []), "-q", *args]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            self.argv(*args), env=self.env, cwd="/", capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def all(self, commands: Iterable[tuple[str, ...]]) -> None:
        """Several commands at once (each is an Erlang VM of its own: ~1 s)."""
        running = [
            subprocess.Popen(
                self.argv(*c),
                env=self.env,
                cwd="/",  # the tool may run as the rabbitmq user
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for c in commands
        ]
        for process in running:
            process.wait(120)

    def import_definitions(self, document: dict[str, Any]) -> None:
        # The file is read by rabbitmqctl, which runs as the rabbitmq user: world-readable.
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(document, f)
        try:
            os.chmod(f.name, 0o644)
            self("import_definitions", f.name)
        finally:
            os.unlink(f.name)


@dataclass(frozen=True)
class Principal:
    """An AMQP user of the test's vhost, and the URL it logs in with."""

    user: str
    password: str
    url: str


@dataclass
class BrokerSpace:
    ctl: Rabbitmqctl
    server_url: str  # an administrator's login on the node (no vhost)
    vhost: str
    topology: Topology
    services: dict[str, Principal]  # Waybill's own, by service
    principals: dict[str, Principal] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return self.vhost.rsplit("-", 1)[-1]

    @property
    def admin_url(self) -> str:
        """The administrator's login on this vhost (every right: for the tests' taps)."""
        return _on_vhost(self.server_url, self.vhost)

    def service_env(self, service: str) -> dict[str, str]:
        env = {SERVICE_USER_SETTINGS[s]: p.user for s, p in self.services.items()}
        env["WAYBILL_AMQP_URL"] = self.services[service].url
        env["WAYBILL_AMQP_PREFIX"] = self.topology.prefix
        return env

    def principal(self, name: str) -> Principal:
        """A service account's AMQP user (made on first use), with the permissions
        docs/PRINCIPALS.md gives one."""
        if name not in self.principals:
            principal = self._new_user(name)
            added = service_account_user(principal.user, principal.password, self.topology)
            document = definitions(self.vhost, self.topology, [added])
            self.ctl.import_definitions(
                {k: document[k] for k in ("users", "permissions", "topic_permissions")}
            )
            _wait_for_login(principal.url)
            self.principals[name] = principal
        return self.principals[name]

    def _new_user(self, role: str) -> Principal:
        login = (f"wbtest-{self.token}-{role}", secrets.token_urlsafe(16))
        return Principal(*login, _on_vhost(self.server_url, self.vhost, login))

    def remove(self) -> None:
        users = [p.user for p in (*self.services.values(), *self.principals.values())]
        self.ctl.all([("delete_vhost", self.vhost), *(("delete_user", u) for u in users)])


def _on_vhost(server_url: str, vhost: str, login: tuple[str, str] | None = None) -> str:
    """`server_url` on `vhost`, logged in as `login` (user, password) when given."""
    parts = urlsplit(server_url)
    netloc = parts.netloc
    if login is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{quote(login[0], safe='')}:{quote(login[1], safe='')}@{host}"
    return f"{parts.scheme}://{netloc}/{quote(vhost, safe='')}"


def _wait_for_login(url: str, queue: str | None = None) -> None:
    """Until the imported definitions are in force (the import may still be running)."""
    from support.stack import wait_for

    def ready() -> bool:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
        except pika.exceptions.AMQPError:
            return False
        try:
            if queue is not None:
                connection.channel().queue_declare(queue, passive=True)
            return True
        except pika.exceptions.AMQPError:
            return False
        finally:
            if connection.is_open:
                connection.close()

    wait_for(ready, timeout=30, interval=0.2, message=f"the broker to admit {url.split('@')[0]}")


def open_broker_space(ctl: Rabbitmqctl, server_url: str, prefix: str) -> BrokerSpace:
    """A new vhost with Waybill's topology under `prefix` and its four service users."""
    topology = Topology(prefix)
    vhost = f"wbtest-{secrets.token_hex(4)}"
    space = BrokerSpace(ctl, server_url, vhost, topology, {})
    users: list[AmqpUser] = []
    for service in SERVICES:
        principal = space.services[service] = space._new_user(service)
        permissions = service_permissions(service, topology)
        users.append(AmqpUser(principal.user, principal.password, permissions))
    document = definitions(vhost, topology, users, grants={amqp_user_of(server_url): FULL})
    try:
        ctl.import_definitions(document)
        _wait_for_login(space.services["tracker"].url, topology.provenance_events.dead_letter_queue)
    except BaseException:
        space.remove()
        raise
    return space
