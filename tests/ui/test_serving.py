"""The gateway serves the built UI at / and at each page's URL, with its assets; every
other path answers as before."""

from __future__ import annotations

import re

from support.stack import Stack


def test_pages_and_assets_are_served_and_the_api_is_unchanged(stack: Stack, ui_built: None) -> None:
    anonymous = stack.client(None)
    index = anonymous.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    for page in ("/files", "/exports", "/histories", "/extraction", "/login", "/histories/7"):
        answer = anonymous.get(page)
        assert answer.status_code == 200 and answer.text == index.text, page
    # Nothing from another origin: every script and stylesheet is ours.
    assets = re.findall(r'(?:src|href)="([^"]+)"', index.text)
    assert all(a.startswith("/assets/") or a.startswith("data:") for a in assets), assets
    for asset in assets:
        if asset.startswith("/assets/"):
            assert anonymous.get(asset).status_code == 200, asset
    assert anonymous.get("/assets/nothing.js").status_code == 404
    # The API, Swagger and the probes are as they were.
    unknown = anonymous.get("/api/nothing-here")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    assert anonymous.post("/api/nothing-here").status_code == 404
    assert anonymous.get("/api/data-export/jobs").status_code == 401
    assert anonymous.get("/docs").status_code == 200
    assert anonymous.get("/livez").status_code == 200
    assert anonymous.get("/openapi.json").json()["info"]["title"] == "Waybill"
    assert "/" not in anonymous.get("/openapi.json").json()["paths"]
