"""What several routers share: ids in paths, and the one rule for lists.

Every list endpoint takes `limit` and `offset` and answers a bare JSON array; the
total is in `X-Total-Count` and the neighbouring pages in `Link` (RFC 8288,
rel="next" and rel="prev"). A route declares itself a list with `**paginated(Model)`
and answers `page.answer(items, total)`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel

DEFAULT_PAGE_SIZE = 50
MAX_OFFSET = 2**31 - 1

T = TypeVar("T")


class Page:
    """The page a list request asked for; `answer` tells the client where it is."""

    def __init__(self, *, limit: int, offset: int, request: Request, response: Response) -> None:
        self.limit = limit
        self.offset = offset
        self._request = request
        self._response = response

    def answer(self, items: Sequence[T], total: int) -> list[T]:
        self._response.headers["X-Total-Count"] = str(total)
        links = self.links(total)
        if links:
            self._response.headers["Link"] = ", ".join(
                f'<{url}>; rel="{rel}"' for rel, url in links.items()
            )
        return list(items)

    def links(self, total: int) -> dict[str, str]:
        url = self._request.url
        links: dict[str, str] = {}
        if self.offset + self.limit < total:
            links["next"] = str(
                url.include_query_params(limit=self.limit, offset=self.offset + self.limit)
            )
        if self.offset > 0:
            previous = max(min(self.offset, total) - self.limit, 0)
            links["prev"] = str(url.include_query_params(limit=self.limit, offset=previous))
        return links


def pagination(
    *, default_limit: int | None = DEFAULT_PAGE_SIZE
) -> Callable[..., Coroutine[Any, Any, Page]]:
    """The `limit`/`offset` dependency. `default_limit=None`: the whole page size
    limit when no limit is given (lists that Galaxy clients read whole)."""
    default_text = (
        f"{default_limit} (or the page size limit, if smaller)"
        if default_limit
        else "the page size limit"
    )
    # Defaults, not Annotated: annotations are strings here, evaluated without closures.
    limit_query: Any = Query(
        None,
        ge=1,
        description=f"at most the page size limit (500 by default); {default_text} when absent",
    )
    offset_query: Any = Query(0, ge=0, le=MAX_OFFSET)

    async def page(
        request: Request,
        response: Response,
        limit: int | None = limit_query,
        offset: int = offset_query,
    ) -> Page:
        maximum: int = request.app.state.settings.max_page_size
        if limit is None:
            limit = min(default_limit or maximum, maximum)
        elif limit > maximum:
            raise HTTPException(422, f"limit {limit} exceeds the page size limit of {maximum}")
        return Page(limit=limit, offset=offset, request=request, response=response)

    return page


PageDep = Annotated[Page, Depends(pagination())]
WholePageDep = Annotated[Page, Depends(pagination(default_limit=None))]

PAGE_HEADERS: dict[str, Any] = {
    "X-Total-Count": {
        "description": "how many items the list holds, over all pages",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'the neighbouring pages (RFC 8288): rel="next" while more follow, '
        'rel="prev" after the first page',
        "schema": {"type": "string"},
    },
}


def paginated(model: Any) -> dict[str, Any]:
    """Route keyword arguments of a list endpoint: a JSON array of `model`, with the
    paging headers documented."""
    return {
        "response_model": list[model],
        "responses": {200: {"description": "one page of the list", "headers": PAGE_HEADERS}},
    }


IdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="an integer id")]


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, serialized once. A route on every job's path returns this
    instead of the model, which FastAPI would validate again against the route's
    response_model (still declared, for the OpenAPI document) before serializing it."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


STREAM_EVENT_NAMES = [
    "pending",
    "processing",
    "progress",
    "completed",
    "failed",
    "cancelled",
    "expired",
]


def event_stream(described: str, data_schema: dict[str, Any], example: str) -> dict[str, Any]:
    """Route keyword arguments of an event stream (Server-Sent Events): each message
    (`itemSchema`, as OpenAPI 3.2 and FastAPI describe one) has an `id`, an `event`
    name and `data`, JSON of `data_schema` (`described`, for people)."""
    message = {
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "resume after it"},
            "event": {"type": "string", "enum": STREAM_EVENT_NAMES},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data_schema,
            },
        },
    }
    return {
        "response_class": Response,
        "responses": {
            200: {
                "description": "Server-Sent Events until the terminal state: each "
                f"message's `data` is {described}, `id` the latest event id, `event` the "
                "new status or `progress`; a comment every 15 s keeps the connection",
                "content": {"text/event-stream": {"itemSchema": message, "example": example}},
            },
            204: {"description": "a reconnection after the terminal state: nothing more comes"},
        },
    }
