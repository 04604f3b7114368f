"""The key goes in either header (the bearer token counts when both are sent); no key
and a wrong key are 401 with a message that says which, as documented."""

from __future__ import annotations

import httpx
import pytest

from support.stack import Stack

MISSING = "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    with stack.client() as admin:
        created = admin.post("/api/users", json={"name": "headers"})
        assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({"Authorization": "Bearer {key}"}, 200, None),
        ({"Authorization": "bearer   {key}"}, 200, None),
        ({"X-API-Key": "{key}"}, 200, None),
        ({"Authorization": "Bearer {key}", "X-API-Key": "wrong"}, 200, None),
        ({"Authorization": "Basic d2F5YmlsbDp4", "X-API-Key": "{key}"}, 200, None),
        ({}, 401, MISSING),
        ({"Authorization": "Basic d2F5YmlsbDp4"}, 401, MISSING),
        ({"Authorization": "Bearer"}, 401, MISSING),
        ({"Authorization": "Bearer wrong"}, 401, "invalid API key"),
        ({"X-API-Key": "wrong", "Authorization": "Bearer wrong"}, 401, "invalid API key"),
        ({"X-API-Key": "wrong"}, 401, "invalid API key"),
    ],
)
def test_key_headers(
    stack: Stack, key: str, headers: dict[str, str], status: int, detail: str | None
) -> None:
    sent = {name: value.format(key=key) for name, value in headers.items()}
    response = httpx.get(f"{stack.gateway_url}/api/users/me", headers=sent)
    assert response.status_code == status, response.text
    if detail is None:
        assert response.json()["name"] == "headers"
    else:
        assert response.json() == {"detail": detail}
        assert response.headers["WWW-Authenticate"] == "Bearer"
