"""Rate limits per API key and route class, on a gateway of the test's own with small
limits: every answer carries the RateLimit fields (IETF draft); over the limit is 429
with Retry-After, and the key may go on after waiting that long. Each replica holds
the configured rate divided by the replica count (here 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from support.stack import ServiceProcess, Stack

LIMITS = {
    "WAYBILL_GATEWAY_REPLICAS": "2",
    "WAYBILL_RATE_LIMIT_READ_PER_SECOND": "1",
    "WAYBILL_RATE_LIMIT_READ_BURST": "6",  # 3 on each of 2 replicas, 0.5 per second
    "WAYBILL_RATE_LIMIT_CREATE_PER_SECOND": "2",
    "WAYBILL_RATE_LIMIT_CREATE_BURST": "2",  # 1 on each replica, 1 per second
    "WAYBILL_RATE_LIMIT_UPLOAD_PER_SECOND": "0",  # no limit
}


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[ServiceProcess]:
    gateway = stack.infra.service("gateway", **LIMITS).start()
    gateway.wait_ready()
    yield gateway
    gateway.terminate()


def on(gateway: ServiceProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{gateway.port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def fields(response: httpx.Response) -> tuple[str, str, str]:
    h = response.headers
    return h["RateLimit-Limit"], h["RateLimit-Remaining"], h["RateLimit-Reset"]


def key_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split(" ", 1)[1]


def test_over_the_limit_is_429_with_retry_after_and_recovers(
    stack: Stack, limited: ServiceProcess
) -> None:
    with stack.new_user() as user, on(limited, key_of(user)) as c:
        answers = [c.get("/api/users/me") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [fields(a)[:2] for a in answers] == [("3", "2"), ("3", "1"), ("3", "0")]
        assert all(a.headers["RateLimit-Policy"] == "3;w=6" for a in answers)
        assert int(fields(answers[-1])[2]) >= 5  # 3 tokens at 0.5/s to fill up again

        refused = c.get("/api/files")  # any read route: the class, not the path
        assert refused.status_code == 429, refused.text
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 2
        assert fields(refused)[:2] == ("3", "0")
        assert refused.json()["detail"] == (
            f"rate limit of this API key: 3 read requests per 6 s; retry in {retry_after} s"
        )

        time.sleep(retry_after)
        again = c.get("/api/users/me")
        assert again.status_code == 200, again.text
        assert fields(again)[:2] == ("3", "0")
        assert c.get("/api/users/me").status_code == 429  # and the next one waits again


def test_classes_and_keys_have_buckets_of_their_own(stack: Stack, limited: ServiceProcess) -> None:
    with stack.new_user() as user, on(limited, key_of(user)) as c:
        while c.get("/api/users/me").status_code != 429:
            pass
        made = c.post("/api/projects", json={"name": "limited"})
        assert made.status_code == 201, "reads spent, creates still allowed"
        assert fields(made)[:2] == ("1", "0")
        over = c.post("/api/projects", json={"name": "limited"})
        assert over.status_code == 429 and "create requests" in over.json()["detail"]
        assert over.headers["Retry-After"] == "1"

        uploaded = c.post("/api/files", files={"file": ("a.txt", b"a")})
        assert uploaded.status_code == 201, "uploads have no limit here"
        assert "RateLimit-Limit" not in uploaded.headers

        second = user.post("/api/users/me/keys", json={"name": "second"}).json()["key"]
        with on(limited, second) as c2:
            answer = c2.get("/api/users/me")
            assert answer.status_code == 200 and fields(answer)[:2] == ("3", "2")


def test_refused_keys_spend_nothing_and_carry_no_fields(limited: ServiceProcess) -> None:
    with on(limited, "not-a-key") as c:
        for _ in range(5):
            refused = c.get("/api/users/me")
            assert refused.status_code == 401
            assert "RateLimit-Limit" not in refused.headers
