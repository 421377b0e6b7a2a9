"""Pagination: `page` (from 1) and `page_size` query parameters; lists stay JSON arrays (FMN 3
compatibility) and the totals travel in X-Total-Count, X-Page and X-Page-Size headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
PAGE_HEADERS = ("X-Total-Count", "X-Page", "X-Page-Size")
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def slice(self, items: Sequence[T]) -> list[T]:
        return list(items[self.offset : self.offset + self.size])

    def headers(self, response: Response, total: int) -> None:
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Page"] = str(self.number)
        response.headers["X-Page-Size"] = str(self.size)


async def page_params(
    request: Request,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")] = 1,
    page_size: Annotated[
        int | None, Query(ge=1, description="Items per page (default and maximum: settings)")
    ] = None,
) -> Page:
    api = request.app.state.services.settings.api
    if page_size is None:
        page_size = api.page_size
    elif page_size > api.max_page_size:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "page_size"),
                    "msg": f"Input should be less than or equal to {api.max_page_size}",
                    "input": page_size,
                    "ctx": {"le": api.max_page_size},
                }
            ]
        )
    return Page(page, page_size)


PageDep = Annotated[Page, Depends(page_params)]


async def paginate(
    session: AsyncSession, query: Select[Any], page: Page, response: Response
) -> Sequence[Any]:
    """One page of a query's first column (ORM objects or scalars), with the headers set."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page.headers(response, int(total or 0))
    if page.offset >= (total or 0):
        return []
    return (await session.scalars(query.offset(page.offset).limit(page.size))).all()


def paginate_list(items: Sequence[T], page: Page, response: Response) -> list[T]:
    page.headers(response, len(items))
    return page.slice(items)
