from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request

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
