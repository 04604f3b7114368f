"""The one rule for lists (waybill_gateway.api.common.Page): the total in
X-Total-Count, the neighbouring pages in Link."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from waybill_gateway.api.common import Page


def page(limit: int, offset: int, query: bytes = b"") -> tuple[Page, Response]:
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("gateway", 8000),
            "path": "/api/histories",
            "query_string": query,
            "headers": [],
        }
    )
    response = Response()
    return Page(limit=limit, offset=offset, request=request, response=response), response


BASE = "http://gateway:8000/api/histories"


@pytest.mark.parametrize(
    ("limit", "offset", "total", "links"),
    [
        (10, 0, 0, {}),
        (10, 0, 10, {}),
        (10, 0, 11, {"next": f"{BASE}?limit=10&offset=10"}),
        (
            10,
            10,
            30,
            {"next": f"{BASE}?limit=10&offset=20", "prev": f"{BASE}?limit=10&offset=0"},
        ),
        (10, 20, 30, {"prev": f"{BASE}?limit=10&offset=10"}),
        (10, 5, 30, {"next": f"{BASE}?limit=10&offset=15", "prev": f"{BASE}?limit=10&offset=0"}),
        # Past the end: prev leads back to the last page there is.
        (10, 100, 25, {"prev": f"{BASE}?limit=10&offset=15"}),
    ],
)
def test_links(limit: int, offset: int, total: int, links: dict[str, str]) -> None:
    assert page(limit, offset)[0].links(total) == links


def test_links_keep_the_other_query_parameters() -> None:
    listed, _ = page(2, 0, b"deleted=false&limit=2")
    assert listed.links(5) == {"next": f"{BASE}?deleted=false&limit=2&offset=2"}


def test_answer_sets_the_headers_and_returns_the_items() -> None:
    listed, response = page(2, 2, b"limit=2&offset=2")
    assert listed.answer(["c", "d"], 5) == ["c", "d"]
    assert response.headers["X-Total-Count"] == "5"
    assert response.headers["Link"] == (
        f'<{BASE}?limit=2&offset=4>; rel="next", <{BASE}?limit=2&offset=0>; rel="prev"'
    )


def test_a_single_page_has_no_link_header() -> None:
    listed, response = page(50, 0)
    assert listed.answer([], 0) == []
    assert response.headers["X-Total-Count"] == "0" and "Link" not in response.headers
