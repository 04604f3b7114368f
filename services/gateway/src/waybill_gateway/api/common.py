from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel

DEFAULT_PAGE_SIZE = 50


class Page:
    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset


async def page(
    request: Request,
    limit: Annotated[
        int | None,
        Query(ge=1, description="at most the configured page size; 50 (or that size) if absent"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Page:
    maximum = request.app.state.settings.max_page_size
    if limit is None:
        return Page(min(DEFAULT_PAGE_SIZE, maximum), offset)
    if limit > maximum:
        raise HTTPException(422, f"limit {limit} exceeds the page size limit of {maximum}")
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page)]


IdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="an integer id")]


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, serialized once. A route on every job's path returns this
    instead of the model, which FastAPI would validate again against the route's
    response_model (still declared, for the OpenAPI document) before serializing it."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
