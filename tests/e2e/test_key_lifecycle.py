"""API keys have a life: a user holds several named keys, each shown once; a revoked
key is refused within a second on every gateway replica (each keeps a 1 s cache), an
expired key at once; administrators list and revoke anyone's keys; nobody else sees
or revokes mine (404); when a key was last used is recorded, coarsely."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from support.stack import ServiceProcess, Stack, wait_for

CACHE_SECONDS = 1.0  # the gateway's api_key_cache_seconds (the default)


def client(gateway_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"})


def new_key(user: httpx.Client, name: str, **fields: str) -> dict[str, object]:
    created = user.post("/api/users/me/keys", json={"name": name, **fields})
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


@pytest.fixture(scope="module")
def second_gateway(stack: Stack) -> Iterator[ServiceProcess]:
    """Another replica on the same database: its cache knows nothing of the first's."""
    gateway = stack.infra.service("gateway", WAYBILL_API_KEY_LAST_USED_SECONDS="0.3").start()
    gateway.wait_ready()
    yield gateway
    gateway.terminate()


def refused_within(url: str, key: str, after: float) -> float:
    """Seconds from `after` to the first 401 for the key (polled every 20 ms)."""
    with client(url, key) as c:
        while True:
            status = c.get("/api/users/me").status_code
            if status == 401:
                return time.monotonic() - after
            assert status == 200
            assert time.monotonic() - after < 5, "the key still works 5 s later"
            time.sleep(0.02)


def test_several_named_keys_each_shown_once(stack: Stack) -> None:
    with stack.new_user() as user:
        me = user.get("/api/users/me").json()
        first, second = new_key(user, "laptop"), new_key(user, "ci")
        for created in (first, second):
            key = str(created["key"])
            assert key.startswith(str(created["prefix"])) and len(key) >= 40
            with client(stack.gateway_url, key) as c:
                assert c.get("/api/users/me").json()["id"] == me["id"]
        listed = user.get("/api/users/me/keys")
        assert listed.status_code == 200
        assert listed.headers["X-Total-Count"] == "3"
        names = [k["name"] for k in listed.json()]
        assert names == ["default", "laptop", "ci"]
        assert all("key" not in k for k in listed.json()), "a key is shown only once"
        one = user.get(f"/api/users/me/keys/{first['id']}").json()
        assert one["name"] == "laptop" and "key" not in one

        again = user.post("/api/users/me/keys", json={"name": "laptop"})
        assert again.status_code == 409, again.text
        assert "already have a key named 'laptop'" in again.json()["detail"]
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        assert (
            user.post("/api/users/me/keys", json={"name": "x", "expires_at": past}).status_code
            == 422
        )
        naive = user.post(
            "/api/users/me/keys", json={"name": "x", "expires_at": "2030-01-01T00:00:00"}
        )
        assert naive.status_code == 422, naive.text


def test_revoked_key_is_refused_within_a_second_on_every_replica(
    stack: Stack, second_gateway: ServiceProcess
) -> None:
    other_url = f"http://127.0.0.1:{second_gateway.port}"
    with stack.new_user() as user:
        doomed, kept = new_key(user, "doomed"), new_key(user, "kept")
        # Both replicas have the key in their caches.
        for url in (stack.gateway_url, other_url):
            with client(url, str(doomed["key"])) as c:
                assert c.get("/api/users/me").status_code == 200
        revoked = user.delete(f"/api/users/me/keys/{doomed['id']}")
        assert revoked.status_code == 204, revoked.text
        at = time.monotonic()
        # The replica that revoked it forgets it at once; the other within its cache time.
        assert refused_within(stack.gateway_url, str(doomed["key"]), at) < 0.5
        took = refused_within(other_url, str(doomed["key"]), at)
        assert took <= CACHE_SECONDS + 0.2, f"refused only after {took:.2f} s"
        time.sleep(max(0.0, at + CACHE_SECONDS - time.monotonic()))
        for url in (stack.gateway_url, other_url):
            with client(url, str(doomed["key"])) as c:
                refused = c.get("/api/files")
                assert refused.status_code == 401 and refused.json()["detail"] == "invalid API key"
            with client(url, str(kept["key"])) as c:
                assert c.get("/api/files").status_code == 200, "the other key still works"
        gone = user.get(f"/api/users/me/keys/{doomed['id']}")
        assert gone.status_code == 404
        assert user.delete(f"/api/users/me/keys/{doomed['id']}").status_code == 404


def test_expired_key_is_refused_at_once_even_when_cached(
    stack: Stack, second_gateway: ServiceProcess
) -> None:
    other_url = f"http://127.0.0.1:{second_gateway.port}"
    with stack.new_user() as user:
        expires = datetime.now(UTC) + timedelta(seconds=3)
        brief = new_key(user, "brief", expires_at=expires.isoformat())
        assert brief["expires_at"] is not None
        key = str(brief["key"])
        with client(stack.gateway_url, key) as a, client(other_url, key) as b:
            assert a.get("/api/users/me").status_code == 200
            assert b.get("/api/users/me").status_code == 200

            def refused_on_both() -> bool:
                return (
                    a.get("/api/users/me").status_code == b.get("/api/users/me").status_code == 401
                )

            wait_for(refused_on_both, timeout=10, interval=0.02, message="the key to expire")
            late = datetime.now(UTC) - expires
            assert late < timedelta(seconds=0.5), f"an expired key worked {late} too long"
            refused = a.get("/api/files")
            assert refused.status_code == 401
            assert refused.json()["detail"] == "this API key has expired"
            assert refused.headers["WWW-Authenticate"] == "Bearer"
        # An expired key stays listed (the user sees why it stopped working).
        listed = {k["name"]: k for k in user.get("/api/users/me/keys").json()}
        assert listed["brief"]["expires_at"] is not None


def test_admin_lists_and_revokes_anyones_keys(stack: Stack) -> None:
    with stack.new_user() as user, stack.client() as admin:
        user_id = user.get("/api/users/me").json()["id"]
        stolen = new_key(user, "stolen")
        with client(stack.gateway_url, str(stolen["key"])) as thief:
            assert thief.get("/api/users/me").status_code == 200
            listed = admin.get(f"/api/users/{user_id}/keys")
            assert listed.status_code == 200
            assert {k["name"] for k in listed.json()} == {"default", "stolen"}
            assert all("key" not in k for k in listed.json())
            revoked = admin.delete(f"/api/users/{user_id}/keys/{stolen['id']}")
            assert revoked.status_code == 204, revoked.text
            at = time.monotonic()
            time.sleep(CACHE_SECONDS)
            assert thief.get("/api/users/me").status_code == 401, f"{time.monotonic() - at:.2f} s"
        assert user.get("/api/users/me").status_code == 200, "the user's other key still works"
        # A key id under another user is no key of that user.
        admin_key = admin.get("/api/users/me/keys").json()[0]["id"]
        wrong_owner = admin.delete(f"/api/users/{user_id}/keys/{admin_key}")
        assert wrong_owner.status_code == 404
        assert admin.get(f"/api/users/{2**31 - 1}/keys").status_code == 404
        with stack.new_user() as someone:
            assert someone.get(f"/api/users/{user_id}/keys").status_code == 403


def test_another_user_cannot_see_or_revoke_my_keys(stack: Stack) -> None:
    with stack.new_user() as me, stack.new_user() as other:
        mine = new_key(me, f"mine-{uuid.uuid4().hex[:6]}")
        assert other.get(f"/api/users/me/keys/{mine['id']}").status_code == 404
        refused = other.delete(f"/api/users/me/keys/{mine['id']}")
        assert refused.status_code == 404
        assert refused.json() == {"detail": f"API key {mine['id']} not found"}
        assert mine["id"] not in {k["id"] for k in other.get("/api/users/me/keys").json()}
        with client(stack.gateway_url, str(mine["key"])) as c:
            assert c.get("/api/users/me").status_code == 200, "my key still works"


def test_last_used_is_recorded_coarsely(stack: Stack, second_gateway: ServiceProcess) -> None:
    """No write per request: a gateway that writes uses once an hour has written none
    after many requests, and writes them when it stops; the second replica (every
    0.3 s) records the use shortly after."""
    gateway = stack.infra.service("gateway", WAYBILL_API_KEY_LAST_USED_SECONDS="3600").start()
    with stack.new_user() as user:
        used = new_key(user, "used")

        def last_used() -> str | None:
            value = user.get(f"/api/users/me/keys/{used['id']}").json()["last_used_at"]
            return str(value) if value else None

        try:
            gateway.wait_ready()
            before = datetime.now(UTC)
            with client(f"http://127.0.0.1:{gateway.port}", str(used["key"])) as c:
                for _ in range(20):
                    assert c.get("/api/users/me").status_code == 200
            time.sleep(0.5)
            assert last_used() is None, "a use was written on the request's path"
        finally:
            assert gateway.terminate() in (0, -15)
        written = str(last_used())
        stamp = datetime.fromisoformat(written)
        assert before <= stamp <= datetime.now(UTC), "written when the gateway stopped"

        time.sleep(0.1)
        with client(f"http://127.0.0.1:{second_gateway.port}", str(used["key"])) as c:
            assert c.get("/api/users/me").status_code == 200
        later = wait_for(lambda: (v := last_used()) != written and v, timeout=5, message="use")
        assert datetime.fromisoformat(str(later)) > stamp
