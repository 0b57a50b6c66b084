"""What the console's form routes share with every capability's pages: a form checked
by the API's own body model (a refusal in the API's `validation_error` shape), and the
paging of a server-side table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ._errors import InvalidForm

__all__ = ["PAGE_SIZES", "checked", "paging", "sort_of"]

PAGE_SIZES = (10, 25, 50, 100)


def checked(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """`values` as the API's body `model`, or `InvalidForm` with each problem."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "form", "problem": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        raise InvalidForm(message, details=details) from None


def paging(request: Request) -> dict[str, int]:
    """`offset` and `limit` of a table from the query string, bounded."""
    query = request.query_params
    try:
        offset = max(0, min(int(query.get("offset", 0)), 10_000_000))
        limit = int(query.get("limit", 25))
    except ValueError:
        offset, limit = 0, 25
    return {"offset": offset, "limit": limit if limit in PAGE_SIZES else 25}


def sort_of(request: Request, keys: Sequence[str]) -> str:
    """The `sort` of the query string if it is one of `keys`, else the first key."""
    sort = request.query_params.get("sort", keys[0])
    return sort if sort in keys else keys[0]
