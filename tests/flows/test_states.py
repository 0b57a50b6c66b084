"""The flows' state database: saves committed in batches, on disk when `save` returns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from shopfloor.flows._states import StateStore


def on_disk(path: Path) -> dict[tuple[str, str], dict[str, object]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT org_id, flow_id, data FROM flow_states").fetchall()
    return {(org, flow): json.loads(data) for org, flow, data in rows}


def state(n: int) -> Callable[[], dict[str, object]]:
    return lambda: {"n": n}


async def test_a_save_is_on_disk_when_it_returns(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "flows" / "state.db")
    assert await store.open() == {}
    try:
        await store.save(("org", "a"), lambda: {"state": "running"})
        # Another connection, as another process would read it.
        assert on_disk(store.path) == {("org", "a"): {"state": "running"}}
        await store.save(("org", "a"), lambda: {"state": "stopped"})
        assert on_disk(store.path) == {("org", "a"): {"state": "stopped"}}
    finally:
        await store.close()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700

    again = StateStore(store.path)
    try:
        assert await again.open() == {("org", "a"): {"state": "stopped"}}
    finally:
        await again.close()


async def test_saves_made_together_share_commits(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    await store.open()
    try:
        await asyncio.gather(*(store.save(("org", f"f{n}"), state(n)) for n in range(500)))
        assert store.written == 500
        # They all came before the writer ran: one commit (two, had one started first).
        assert store.commits <= 2, store.commits
        assert len(on_disk(store.path)) == 500

        # A flow saving again before its commit keeps only its newest state.
        before = store.written
        await asyncio.gather(*(store.save(("org", "same"), state(n)) for n in range(50)))
        assert store.written - before <= 2
        assert on_disk(store.path)[("org", "same")] == {"n": 49}
    finally:
        await store.close()


async def test_a_state_changed_before_its_commit_is_serialised_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    await store.open()
    asked: list[int] = []
    value = {"n": 0}

    def snapshot() -> dict[str, object]:
        asked.append(value["n"])
        return dict(value)

    try:
        for n in range(10):
            value["n"] = n
            saved = store.save_soon(("org", "a"), snapshot)
        await saved
        assert asked == [9] and on_disk(store.path) == {("org", "a"): {"n": 9}}
    finally:
        await store.close()
