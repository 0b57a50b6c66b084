"""The dashboards store on SQLite and PostgreSQL: its migration, versions, organisations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shopfloor.app import create_app
from shopfloor.dashboards import DashboardConflict, DashboardNotFound, check_document
from shopfloor.dashboards.capability import DashboardsService
from tests.serving import lifespan


async def test_two_saves_of_one_version_one_wins_and_orgs_stay_apart(
    make_settings: Callable[..., Any], database_url: str
) -> None:
    app = create_app(make_settings(services="dashboards", database_url=database_url))
    async with lifespan(app):
        store = app.state.platform.get(DashboardsService).store
        created = await store.create("org-a", check_document({"title": "B"}))
        await store.create("org-a", check_document({"title": "A"}))

        async def save(title: str) -> Any:
            return await store.put("org-a", created.id, check_document({"title": title}), version=1)

        results = await asyncio.gather(save("mine"), save("theirs"), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["Dashboard", "DashboardConflict"]
        stored = await store.get("org-a", created.id)
        assert stored.version == 2 and stored.document.title in ("mine", "theirs")
        with pytest.raises(DashboardConflict):
            await store.put("org-a", created.id, check_document({"title": "x"}), version=1)

        page = await store.page("org-a", limit=10)
        assert [d.document.title for d in page.items] == ["A", stored.document.title]
        assert (await store.page("org-b")).total == 0
        with pytest.raises(DashboardNotFound):
            await store.get("org-b", created.id)
        with pytest.raises(DashboardNotFound):
            await store.delete("org-b", created.id)
        await store.delete("org-a", created.id)
        with pytest.raises(DashboardNotFound):
            await store.put("org-a", created.id, check_document({"title": "x"}), version=2)
