"""The demo plant's dashboard: its simulated machines' telemetry, seeded once.

`serve --demo` calls `seed_demo_dashboard` on every start; it creates the dashboard only
when the organisation has none of its title, so a restart (or a dashboard the user
changed since) keeps what is there.
"""

from __future__ import annotations

from typing import Any

from shopfloor.demo import DemoPlant

from ._model import check_document
from ._store import Dashboard, DashboardStore

__all__ = ["DEMO_DASHBOARD", "seed_demo_dashboard"]

DEMO_DASHBOARD = "Demo Plant telemetry"


def _panel(
    panel_id: str, type_: str, title: str, grid: tuple[int, int, int, int], **query: Any
) -> dict[str, Any]:
    options = query.pop("options", {})
    x, y, w, h = grid
    return {
        "id": panel_id, "type": type_, "title": title,
        "grid": {"x": x, "y": y, "w": w, "h": h}, "query": query, "options": options,
    }  # fmt: skip


def demo_document(plant: DemoPlant) -> dict[str, Any]:
    """Panels over what `shopfloor.simulate` sends: records named `<machine>:<name>`
    (the packs' base name)."""
    things = {thing.name: thing.id for thing in plant.things}
    press, oven, compressor = (things.get(n, "") for n in ("press-01", "oven-02", "compressor-03"))
    channel = plant.channel_id
    return {
        "schemaVersion": 1,
        "title": DEMO_DASHBOARD,
        "description": "The simulated machines of the demo plant, live.",
        "variables": [{"name": "machine", "kind": "thing", "default": press, "label": "Machine"}],
        "time": {"from": "now-15m", "to": "now"},
        "refresh": "30s",
        "panels": [
            _panel("press-pressure", "line", "press-01 pressure", (0, 0, 16, 8),
                   channel=channel, publisher=press, name="press-01:pressure",
                   options={"unit": "bar", "decimals": 1,
                            "thresholds": [{"value": 170, "color": "#d62728"}]}),
            _panel("oven-temperature", "gauge", "oven-02 temperature", (16, 0, 8, 8),
                   channel=channel, publisher=oven, name="oven-02:temperature",
                   options={"unit": "Cel", "min": 0, "max": 250, "decimals": 1, "thresholds": [
                       {"value": 190, "color": "#e8a33d"}, {"value": 210, "color": "#d62728"}]}),
            _panel("compressor-pressure", "stat", "compressor-03 pressure", (0, 8, 6, 6),
                   channel=channel, publisher=compressor, name="compressor-03:pressure",
                   options={"unit": "bar", "decimals": 2,
                            "thresholds": [{"value": 7.4, "color": "#e8a33d"}]}),
            _panel("compressor-current", "line", "compressor-03 motor current", (6, 8, 10, 6),
                   channel=channel, publisher=compressor, name="compressor-03:motor-current",
                   options={"unit": "A", "decimals": 1}),
            _panel("records", "bar", "Records per minute", (16, 8, 8, 6),
                   channel=channel, aggregation="count", interval="1m",
                   options={"decimals": 0}),
            _panel("machine-records", "table", "Latest records of $machine", (0, 14, 24, 8),
                   channel=channel, publisher="$machine", limit=200),
        ],
    }  # fmt: skip


async def seed_demo_dashboard(store: DashboardStore, plant: DemoPlant) -> Dashboard:
    """The demo plant's dashboard: the one there is, or a new one."""
    existing = await store.find(plant.org_id, DEMO_DASHBOARD)
    if existing is not None:
        return existing
    return await store.create(plant.org_id, check_document(demo_document(plant)))
