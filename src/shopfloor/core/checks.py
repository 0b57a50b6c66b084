"""Probes for `shopfloor check-config`: each reads, none creates or writes anything."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["probe_data_dir", "probe_http"]


def probe_data_dir(data_dir: Path) -> str | None:
    """None when the data dir is writable, or can be created where it would be."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"data dir {data_dir}: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == data_dir else f"cannot be created in {existing}"
        return f"data dir {data_dir} {what}"
    return None


async def probe_http(url: str, what: str) -> str | None:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            (await http.get(url)).raise_for_status()
    except httpx.HTTPStatusError as exc:
        return f"{what} at {url} answered {exc.response.status_code}"
    except httpx.HTTPError as exc:
        return f"{what} at {url} is unreachable: {type(exc).__name__}"
    return None
