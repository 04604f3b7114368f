"""Webhooks' pure parts: signing (the Standard Webhooks test vector), backoff, which
events a subscription hears, which URLs and addresses may receive, secrets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from waybill_shared.webhooks.events import kind_of, matches, normalize
from waybill_shared.webhooks.policy import AddressPolicy, Refused, parse_url, resolve
from waybill_shared.webhooks.retry import backoff_seconds, next_attempt
from waybill_shared.webhooks.secrets import check_secret, new_secret
from waybill_tracker.webhooks import VettedResolver, signed_headers

# The Standard Webhooks specification's example (its reference libraries test it).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# --- signing --------------------------------------------------------------------------


def test_signature_matches_the_spec_test_vector() -> None:
    at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = signed_headers(SPEC_SECRET, SPEC_ID, at, SPEC_BODY)
    assert headers["webhook-id"] == SPEC_ID
    assert headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    # The same by hand: HMAC-SHA256 keyed with the secret's bytes over id.timestamp.body.
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{SPEC_ID}.{SPEC_TIMESTAMP}.".encode() + SPEC_BODY, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest.digest()).decode()


def test_a_receiver_verifies_what_we_sign_and_refuses_a_changed_body() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    body = b'{"type":"task.completed"}'
    headers = signed_headers(secret, "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "task.completed"}
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(b'{"type":"task.failed"}', headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)


def test_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert new_secret() != secret
    assert check_secret(SPEC_SECRET) == SPEC_SECRET
    for bad, why in (
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ):
        with pytest.raises(ValueError, match=why):
            check_secret(bad)


# --- backoff --------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (8, 640), (20, 3600), (500, 3600)):
        waits = [backoff_seconds(attempt, base=5, cap=3600, rng=rng) for _ in range(400)]
        assert all(0 <= w <= ceiling for w in waits)
        # Spread over the whole range, not bunched at the ceiling.
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


class FixedJitter(random.Random):
    """Jitter that always picks the same fraction of the range."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def test_retries_stop_at_the_window() -> None:
    made = datetime(2026, 12, 5, tzinfo=UTC)
    day = {"base": 5.0, "cap": 3600.0, "window": 86400.0}
    first = next_attempt(attempt=1, created_at=made, now=made, rng=FixedJitter(0.5), **day)
    assert first == made + timedelta(seconds=2.5)
    late = made + timedelta(hours=23, minutes=50)  # ten minutes of the window left
    assert next_attempt(attempt=30, created_at=made, now=late, rng=FixedJitter(0.1), **day) == (
        late + timedelta(seconds=360)
    )
    assert next_attempt(attempt=30, created_at=made, now=late, rng=FixedJitter(0.5), **day) is None
    past = made + timedelta(hours=24, seconds=1)
    assert next_attempt(attempt=30, created_at=made, now=past, rng=FixedJitter(0.0), **day) is None


# --- which events a subscription hears --------------------------------------------------


@pytest.mark.parametrize(
    ("event", "before", "after", "kind"),
    [
        ("completed", "processing", "completed", "completed"),
        ("completed", "pending", "completed", "completed"),
        ("failed", "processing", "failed", "failed"),
        ("cancelled", "pending", "cancelled", "cancelled"),
        ("expired", "completed", "expired", "expired"),
        # A late completion after a cancel moved nothing: no webhook.
        ("completed", "cancelled", "cancelled", None),
        # A second completion (another attempt) is not a second "completed".
        ("completed", "completed", "completed", None),
        ("processing", "pending", "processing", "progress"),
        ("progress", "processing", "processing", "progress"),
        ("item", "processing", "processing", "progress"),
        ("item", "completed", "completed", None),
        ("unknown", "processing", "processing", None),
    ],
)
def test_webhook_kind_of_an_event(event: str, before: str, after: str, kind: str | None) -> None:
    assert kind_of(event, before, after) == kind


def test_subscribed_events() -> None:
    assert normalize(["failed", "completed", "failed"]) == ["failed", "completed"]
    assert normalize(["progress", "all"]) == ["all"]
    with pytest.raises(ValueError, match="unknown event 'done'"):
        normalize(["done"])
    with pytest.raises(ValueError, match="at least one"):
        normalize([])
    assert matches(["completed"], "completed") and not matches(["completed"], "failed")
    assert matches(["all"], "expired") and matches(["all"], "progress")


# --- which URLs, which addresses -----------------------------------------------------


def test_urls() -> None:
    target = parse_url("https://hooks.example.org/waybill?x=1")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.org", 443)
    assert parse_url("http://[::1]:8080/h").address == ipaddress.ip_address("::1")
    for bad, why in (
        ("ftp://example.org/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("example.org/hook", "only http and https"),
        ("http:///path", "no host"),
        ("https://user:pw@example.org/", "user or password"),
        ("https://example.org:99999/", "not a valid URL"),
        ("https://example.org/#frag", "fragment"),
        ("https://example.org/a b", "spaces or control characters"),
        ("https://example.org/\x00", "spaces or control characters"),
        ("https://example.org/" + "a" * 2000, "longer than"),
    ):
        with pytest.raises(Refused, match=why):
            parse_url(bad)


def addresses(*values: str) -> list[Any]:
    return [ipaddress.ip_address(v) for v in values]


def test_public_addresses_only_unless_admitted() -> None:
    strict = AddressPolicy.of([], allow_loopback=False)
    for public in ("93.184.216.34", "2606:4700:4700::1111"):
        assert strict.refusal(ipaddress.ip_address(public)) is None
    for internal, kind in (
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
    ):
        assert kind in (strict.refusal(ipaddress.ip_address(internal)) or ""), internal
    development = AddressPolicy.of([], allow_loopback=True)
    assert development.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert development.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    admitted = AddressPolicy.of(["10.20.0.0/16"], allow_loopback=False)
    assert admitted.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert admitted.refusal(ipaddress.ip_address("10.21.0.1")) is not None
    assert admitted.refusal(ipaddress.ip_address("127.0.0.1")) is not None


def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    strict = AddressPolicy.of([], allow_loopback=False)
    assert strict.check("ok.example", addresses("93.184.216.34")) == addresses("93.184.216.34")
    with pytest.raises(Refused, match=r"sneaky.example \(resolved to 10.0.0.5\) is refused"):
        strict.check("sneaky.example", addresses("93.184.216.34", "10.0.0.5"))
    with pytest.raises(Refused, match="resolves to no address"):
        strict.check("empty.example", [])


def test_resolving() -> None:
    async def run() -> None:
        assert await resolve("127.0.0.1", 80, within=1) == addresses("127.0.0.1")
        assert ipaddress.ip_address("127.0.0.1") in await resolve("localhost", 80, within=3)
        with pytest.raises(Refused, match="does not resolve"):
            await resolve("no-such-host.invalid", 80, within=3)

    asyncio.run(run())


class FakeResolver:
    """A DNS server whose answer changed since the subscription was made."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": self.answer, "port": port, "family": 2, "proto": 0}]

    async def close(self) -> None:
        return None


def test_delivery_resolves_again_and_refuses_a_rebound_name() -> None:
    strict = AddressPolicy.of([], allow_loopback=False)

    async def run() -> None:
        public = VettedResolver(strict, FakeResolver("93.184.216.34"))  # type: ignore[arg-type]
        found = await public.resolve("hooks.example", 443)
        assert found[0]["host"] == "93.184.216.34"
        rebound = VettedResolver(strict, FakeResolver("169.254.169.254"))  # type: ignore[arg-type]
        with pytest.raises(Refused, match="link-local"):
            await rebound.resolve("hooks.example", 443)

    asyncio.run(run())
