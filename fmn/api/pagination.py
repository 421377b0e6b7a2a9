"""Pagination: `page` (from 1) and `page_size` query parameters; lists stay JSON arrays (FMN 3
compatibility) and the totals travel in X-Total-Count, X-Page and X-Page-Size headers.

Without either parameter a list is answered whole, as FMN 3 answers every list (its clients
send no paging parameters): up to `api.max_list_size` items, and past that a 422 that says how
many there are and how to ask for pages, never a list cut short without a word."""

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
    size: int  # the page's size; for a whole list, the default page size (previews)
    # No paging parameters: the whole list, which may hold at most `most` items.
    whole: bool = False
    most: int = 0

    @property
    def offset(self) -> int:
        return 0 if self.whole else (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        """How many items to read: the page's, or for a whole list its most."""
        return self.most if self.whole else self.size

    def slice(self, items: Sequence[T]) -> list[T]:
        return list(items[self.offset : self.offset + self.limit])

    def headers(self, response: Response, total: int) -> None:
        """The totals; for a whole list of more than it may hold, the 422 instead."""
        if self.whole and total > self.most:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": ("query", "page_size"),
                        "msg": (
                            f"{total} items, more than the {self.most} a list without paging "
                            "parameters holds: ask for pages (page, page_size) or narrow the "
                            "search"
                        ),
                        "input": None,
                        "ctx": {"total": total, "max_length": self.most},
                    }
                ]
            )
        response.headers["X-Total-Count"] = str(total)
        if not self.whole:
            response.headers["X-Page"] = str(self.number)
            response.headers["X-Page-Size"] = str(self.size)


async def page_params(
    request: Request,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Page number, from 1 (default 1)")
    ] = None,
    page_size: Annotated[
        int | None,
        Query(
            ge=1,
            description="Items per page (default and maximum: settings). Without page and "
            "page_size: the whole list, up to api.max_list_size items (422 beyond)",
        ),
    ] = None,
) -> Page:
    api = request.app.state.services.settings.api
    if page is None and page_size is None:
        return Page(1, api.page_size, whole=True, most=api.max_list_size)
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
    return Page(page or 1, page_size)


PageDep = Annotated[Page, Depends(page_params)]


async def paginate(
    session: AsyncSession, query: Select[Any], page: Page, response: Response
) -> Sequence[Any]:
    """One page of a query's first column (ORM objects or scalars), with the headers set."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page.headers(response, int(total or 0))
    if page.offset >= (total or 0):
        return []
    return (await session.scalars(query.offset(page.offset).limit(page.limit))).all()


def paginate_list(items: Sequence[T], page: Page, response: Response) -> list[T]:
    page.headers(response, len(items))
    return page.slice(items)
