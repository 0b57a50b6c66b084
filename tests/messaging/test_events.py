"""Platform events: the hub tells its own process at once and every other one on the bus."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shopfloor.messaging import (
    RECONNECTED,
    Bus,
    EnvelopeDecodeError,
    Event,
    EventHub,
    InvalidSubject,
    create_bus,
    decode_event,
    encode_event,
    event_wire_subject,
)

from .bus_testkit import Backend, TcpProxy, eventually


async def test_listeners_of_the_emitting_process_hear_before_emit_returns(
    backend: Backend,
) -> None:
    bus = await backend.open()
    heard: list[Event] = []
    async with EventHub(bus) as hub:
        listening = hub.listen("registry.>", heard.append)
        hub.listen("agents.>", lambda _event: pytest.fail("a filter that does not match"))
        hub.emit("registry.thing_deleted", {"thing_ids": ["t1"]})
        assert [e.subject for e in heard] == ["registry.thing_deleted"]
        listening.remove()
        hub.emit("registry.thing_deleted", {"thing_ids": ["t2"]})
        assert len(heard) == 1


async def test_other_processes_hear_once_and_the_emitter_not_again(backend: Backend) -> None:
    # Two hubs are two processes; on the memory bus they share the one bus of a process.
    bus_a = await backend.open()
    bus_b = bus_a if backend.kind == "memory" else await backend.open()
    heard_a: list[Event] = []
    heard_b: list[Event] = []
    async with EventHub(bus_a) as a, EventHub(bus_b) as b:
        a.listen(">", heard_a.append)
        all_heard = asyncio.Event()

        def hear_b(event: Event) -> None:
            heard_b.append(event)
            if len(heard_b) >= 20:
                all_heard.set()

        b.listen("registry.*", hear_b)
        for n in range(20):
            a.emit("registry.thing_key_rotated", {"n": n})
        # Generous, and the assertion below says what was heard: once, under a loaded
        # suite, the 20 were not all heard within 5 s.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_heard.wait(), 15)
        assert [e.data["n"] for e in heard_b] == list(range(20)), ("in order, once", heard_b)
        assert all(e.origin == a.origin for e in heard_b)
        b.emit("registry.connected", {"n": "marker"})
        await eventually(lambda: any(e.data["n"] == "marker" for e in heard_a))
    assert len(heard_a) == 21, "the emitter's own events are not dispatched twice"


async def test_a_faulty_listener_does_not_stop_the_others(backend: Backend) -> None:
    bus = await backend.open()
    heard: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("listener bug")

    async with EventHub(bus) as hub:
        hub.listen(">", broken)
        hub.listen(">", heard.append)
        hub.emit("flows.started", {})
    assert len(heard) == 1


async def test_events_wait_for_a_bus_that_comes_back(nats_backend: Backend) -> None:
    listener_bus = await nats_backend.open()
    heard: list[Event] = []
    async with TcpProxy() as proxy:
        emitter_bus = await _open_through(nats_backend, proxy.address)
        async with EventHub(listener_bus) as listener, EventHub(emitter_bus) as emitter:
            listener.listen(">", heard.append)
            await proxy.cut()
            await eventually(lambda: not emitter_bus.ready)
            emitter.emit("registry.thing_deleted", {"n": 1})
            await proxy.restore()
            await eventually(lambda: len(heard) == 1, within=15)


async def _open_through(backend: Backend, address: str) -> Bus:
    url = backend.url().replace("127.0.0.1:4222", address)
    bus = create_bus(url)
    backend.buses.append(bus)
    await bus.open()
    return bus


async def test_a_reconnected_bus_is_told_to_the_listeners_of_its_process(
    nats_backend: Backend,
) -> None:
    other_bus = await nats_backend.open()
    told: list[Event] = []
    heard_here: list[Event] = []
    heard_elsewhere: list[Event] = []
    async with TcpProxy() as proxy:
        bus = await _open_through(nats_backend, proxy.address)
        async with EventHub(bus) as hub, EventHub(other_bus) as other:
            hub.listen(RECONNECTED, told.append)
            hub.listen("registry.*", heard_here.append)
            other.listen(">", heard_elsewhere.append)
            await proxy.cut()
            await eventually(lambda: not bus.ready)
            assert told == []
            await proxy.restore()
            await eventually(lambda: len(told) == 1, within=15)
            # The reconnected process hears the others again.
            other.emit("registry.connected", {"n": "after"})
            await eventually(lambda: len(heard_here) == 1)
    assert all(e.subject != RECONNECTED for e in heard_elsewhere), "a local notice only"


def test_the_wire_form_round_trips_and_refuses_garbage() -> None:
    event = Event(subject="registry.connected", data={"thing_ids": ["a"]}, origin="p1")
    subject = event_wire_subject(event.subject, prefix="t1")
    assert subject == "t1.events.registry.connected"
    assert decode_event(subject, encode_event(event), prefix="t1") == event
    with pytest.raises(EnvelopeDecodeError):
        decode_event(subject, b"not json", prefix="t1")
    with pytest.raises(EnvelopeDecodeError):
        decode_event("t1.channels.x", encode_event(event), prefix="t1")
    with pytest.raises(InvalidSubject):
        Event(subject="registry..connected", data={})
