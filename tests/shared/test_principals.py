"""Who may publish for whom (pure), and the broker permissions each principal gets,
checked as RabbitMQ checks them: an unanchored regex search, `{username}` expanded."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from waybill_shared.messaging.definitions import (
    definitions,
    service_account_permissions,
    service_permissions,
    service_users,
)
from waybill_shared.messaging.topology import SERVICES, Topology
from waybill_shared.principals import PRINCIPAL_NAME, ServiceAccount, refusal
from waybill_shared.settings import DEV_AMQP_PASSWORD, WaybillSettings, amqp_user_of

T = Topology("waybill")


def allows(pattern: str, name: str, username: str = "") -> bool:
    return re.search(pattern.replace("{username}", username), name) is not None


@pytest.mark.parametrize(
    ("acts_for", "user_ids", "owner", "allowed"),
    [
        ("self", (), 10, True),
        ("self", (), 11, False),
        ("users", (11, 12), 12, True),
        ("users", (11, 12), 10, True),  # itself, always
        ("users", (11, 12), 13, False),
        ("any", (), 99, True),
    ],
)
def test_whom_an_account_may_act_for(
    acts_for: str, user_ids: tuple[int, ...], owner: int, allowed: bool
) -> None:
    account = ServiceAccount("lims", 10, acts_for, frozenset(user_ids))  # type: ignore[arg-type]
    assert account.may_act_for(owner) is allowed
    assert (refusal("lims", account, owner) is None) is allowed


def test_refusal_reasons_name_the_cause() -> None:
    assert "no user_id" in str(refusal(None, None, 1))
    assert "'x' is not a service account" in str(refusal("x", None, 1))
    account = ServiceAccount("lims", 10, "self")
    assert refusal("lims", account, 11) == "service account 'lims' may not act for user 11"


@pytest.mark.parametrize("name", ["lims", "LIMS-2", "a_b", "x" * 64])
def test_principal_names_are_one_routing_key_word(name: str) -> None:
    assert PRINCIPAL_NAME.match(name)


@pytest.mark.parametrize("name", ["", "a.b", "a#", "a*", "-a", "a b", "x" * 65, "ä"])
def test_principal_names_refused(name: str) -> None:
    assert not PRINCIPAL_NAME.match(name)


def test_no_service_may_configure_anything() -> None:
    for service in SERVICES:
        permissions = service_permissions(service, T)
        for name in ("waybill.export.requests", "waybill.commands", "amq.gen-x", "anything"):
            assert not allows(permissions.configure, name), (service, name)


def test_each_service_writes_and_reads_only_its_part() -> None:
    gateway = service_permissions("gateway", T)
    worker = service_permissions("export-worker", T)
    extraction = service_permissions("extraction", T)
    tracker = service_permissions("tracker", T)
    assert allows(gateway.write, "waybill.commands") and not allows(gateway.write, "waybill.events")
    assert allows(gateway.read, "waybill.export.requests.dead")
    assert not allows(gateway.read, "waybill.export.requests")
    assert allows(worker.read, "waybill.export.requests")
    assert not allows(worker.read, "waybill.extraction.requests")
    assert not allows(worker.read, "waybill.export.requests.dead")
    assert allows(worker.write, "waybill.events") and not allows(worker.write, "waybill.commands")
    assert allows(extraction.read, "waybill.extraction.requests")
    assert allows(tracker.read, "waybill.tracker.events")
    assert allows(tracker.read, "waybill.provenance.events")
    assert allows(tracker.write, "waybill.commands") and not allows(tracker.write, "waybill.events")
    # A name sharing a prefix is another name.
    assert not allows(gateway.write, "waybill.commands.evil")


def test_a_service_account_reads_only_its_own_events() -> None:
    permissions, topic = service_account_permissions("lims", T)
    assert topic.exchange == "waybill.events"
    assert allows(topic.read, "task.lims.#", "lims")
    assert allows(topic.read, "task.lims.data_export.completed", "lims")
    for key in ("task.#", "#", "task.*.data_export.#", "task.limsx.#", "task.lims#", "task.bob.#"):
        assert not allows(topic.read, key, "lims"), key
    assert not allows(topic.write, "task.lims.data_export.completed", "lims")
    assert allows(permissions.write, "waybill.commands")
    assert not allows(permissions.write, "waybill.events")
    assert allows(permissions.read, "waybill.events")
    for queue in ("amq.gen-Xy1", "waybill.client.lims.mine"):
        assert allows(permissions.configure, queue) and allows(permissions.read, queue)
    for queue in ("waybill.client.bob.theirs", "waybill.export.requests", "waybill.tracker.events"):
        assert not allows(permissions.configure, queue), queue
        assert not allows(permissions.read, queue), queue


def test_definitions_hold_the_whole_topology() -> None:
    users = service_users(WaybillSettings(), T, lambda user: f"secret-{user}")
    document = definitions("waybill", T, users)
    queues = {q["name"] for q in document["queues"]}
    for spec in T.queues:
        assert {spec.name, spec.dead_letter_queue} <= queues
        assert {
            b["routing_key"] for b in document["bindings"] if b["destination"] == spec.name
        } == set(spec.routing_keys)
        (dead,) = [b for b in document["bindings"] if b["destination"] == spec.dead_letter_queue]
        assert dead["source"] == T.dead_letter_exchange and dead["routing_key"] == spec.name
    assert {u["name"] for u in document["users"]} == {
        "waybill-gateway",
        "waybill-export-worker",
        "waybill-extraction",
        "waybill-tracker",
    }
    assert {u["password"] for u in document["users"]} == {
        f"secret-{u['name']}" for u in document["users"]
    }


def test_the_definitions_command_takes_passwords_from_the_environment() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "waybill_shared.messaging.definitions",
            "--vhost",
            "v",
            "--service-account",
            "lims",
        ],
        env={"PATH": "", "WAYBILL_AMQP_PASSWORD_WAYBILL_GATEWAY": "g-secret"},
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(run.stdout)
    passwords = {u["name"]: u["password"] for u in document["users"]}
    assert passwords["waybill-gateway"] == "g-secret"
    assert passwords["lims"] == passwords["waybill-tracker"] == DEV_AMQP_PASSWORD
    assert [t["user"] for t in document["topic_permissions"]] == ["lims"]
    refused = subprocess.run(
        [sys.executable, "-m", "waybill_shared.messaging.definitions"],
        env={
            "PATH": "",
            "WAYBILL_ENVIRONMENT": "production",
            "WAYBILL_ADMIN_API_KEY": "k",
            "WAYBILL_AMQP_URL": "amqp://u:real@h/waybill",
        },
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "WAYBILL_AMQP_PASSWORD_WAYBILL_GATEWAY" in refused.stderr


def test_production_refuses_a_development_broker_password() -> None:
    with pytest.raises(ValueError, match="own password"):
        WaybillSettings(environment="production", admin_api_key="k")
    WaybillSettings(
        environment="production", admin_api_key="k", amqp_url="amqp://u:real@h:5672/waybill"
    )


def test_the_amqp_user_of_a_url() -> None:
    assert amqp_user_of("amqp://waybill-gateway:pw@h:5672/waybill") == "waybill-gateway"
    assert amqp_user_of("amqp://h/") == "guest"
    assert amqp_user_of("amqp://a%40b:pw@h/") == "a@b"
