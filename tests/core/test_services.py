"""The service shape: registration by name, plans ordered by needs, start and stop order."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any, ClassVar

import pytest

from shopfloor.core import EDGE_STAGE, Platform, Service, ServiceError, plan
from shopfloor.settings import Settings


class Recorder(Service):
    """Base of this test's services: records start and stop order."""

    log: ClassVar[list[str]] = []

    async def _start(self, stack: AsyncExitStack) -> None:
        Recorder.log.append(f"start {self.name}")
        stack.callback(Recorder.log.append, f"stop {self.name}")


class Source(Recorder, name="test-source", internal=True):
    """A part others need."""


class Edge(Recorder, name="test-edge", needs=("test-source",)):
    """Takes messages in."""

    stage = EDGE_STAGE


class Sink(Recorder, name="test-sink", needs=("test-source",)):
    """Drains what the source holds."""


class Unplanned(Recorder, name="test-unplanned"):
    """Registered, never started here."""


def test_a_name_is_registered_once() -> None:
    with pytest.raises(TypeError, match="test-sink"):

        class Again(Service, name="test-sink"):
            pass

    assert Service.backends.get("test-sink") is Sink


def test_plans_put_needs_first_and_edges_last() -> None:
    assert plan(["test-edge", "test-sink"]) == (Source, Sink, Edge)
    assert plan(["test-sink"]) == (Source, Sink)


class Extension(Recorder, name="test-extension", before=("test-sink",)):
    """Extends the sink when both run; the sink runs without it."""


def test_before_orders_services_that_both_run_and_starts_none() -> None:
    # Registered after the sink, so without `before` it would come later.
    assert plan(["test-sink", "test-extension"]) == (Source, Extension, Sink)
    assert plan(["test-sink"]) == (Source, Sink)
    assert plan(["test-extension"]) == (Extension,)


def test_unknown_services_and_cycles_are_refused() -> None:
    with pytest.raises(ServiceError, match="teleporter"):
        plan(["teleporter"])

    class Chicken(Service, name="test-chicken", needs=("test-egg",)):
        pass

    class Egg(Service, name="test-egg", needs=("test-chicken",)):
        pass

    with pytest.raises(ServiceError, match="cycle"):
        plan(["test-chicken"])


def test_builtin_services_are_selectable_and_internal_ones_are_not() -> None:
    settings = Settings(services="api")
    assert settings.services == ("api",)
    with pytest.raises(ValueError, match="identity"):
        Settings(services="identity")  # started only as a need
    known = (
        "aas, agents, api, bootstrap, console, dashboards, flows, http, mqtt, provision, "
        "relations, writer"
    )
    with pytest.raises(ValueError, match=known):
        Settings(services="api,teleporter")


async def test_the_platform_starts_in_plan_order_and_stops_in_reverse(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(type(make_settings()), "selectable", ("test-edge", "test-sink"))
    settings = make_settings(services="test-edge,test-sink")
    Recorder.log.clear()
    async with Platform(settings) as platform:
        assert isinstance(platform.get(Sink), Sink)
        with pytest.raises(ServiceError, match="not running"):
            platform.get(Unplanned)
    assert Recorder.log == [
        "start test-source", "start test-sink", "start test-edge",
        "stop test-edge", "stop test-sink", "stop test-source",
    ]  # fmt: skip
