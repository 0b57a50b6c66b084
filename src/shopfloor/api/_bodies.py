"""Request bodies read with a size limit of the route's own, refused as soon as they
pass it (never held whole), with the route's own error."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

__all__ = ["read_bounded"]


async def read_bounded(request: Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The body of `request`; `too_large()` is raised once more than `limit` bytes came."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
