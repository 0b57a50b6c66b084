"""Followed feeds as server-sent events, ended when the server begins to stop."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from shopfloor.core import Platform, until_set

__all__ = ["event_stream"]


def event_stream(platform: Platform, events: AsyncIterator[bytes]) -> StreamingResponse:
    """`events` (SSE frames) as a streaming answer that nothing caches or buffers; it
    ends when the platform's server begins to stop (`Platform.draining`), so a stop
    does not wait for followers to hang up."""
    return StreamingResponse(
        until_set(platform.draining, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
