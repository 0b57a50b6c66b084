"""Backends by name and URL, their settings, and the reconnect pacing."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Self
from urllib.parse import urlsplit

import pytest
from nats.aio.client import Server

from shopfloor.core import backoff_delay
from shopfloor.messaging import (
    Bus,
    Consumer,
    Envelope,
    InvalidBusUrl,
    MemoryBus,
    NatsBus,
    NatsBusConfig,
    Subscription,
    bus_schemes,
    create_bus,
)
from shopfloor.messaging._backoff import ReconnectPolicy


def test_backends_are_registered_by_scheme() -> None:
    assert {"memory", "nats"} <= set(bus_schemes())
    assert isinstance(create_bus("memory://"), MemoryBus)
    assert isinstance(create_bus("nats://127.0.0.1:4222"), NatsBus)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(InvalidBusUrl, match="kafka"):
        create_bus("kafka://broker:9092")


def test_a_scheme_can_be_registered_only_once() -> None:
    with pytest.raises(TypeError, match="already registered"):

        class AnotherMemoryBus(Bus, scheme="memory"):
            @classmethod
            def from_url(cls, url: str) -> Self:
                return cls()

            async def open(self) -> None:
                return None

            async def close(self) -> None:
                return None

            @property
            def ready(self) -> bool:
                return False

            async def publish(self, envelope: Envelope) -> None:
                return None

            def subscribe(
                self, filters: Sequence[str], *, max_queued: int | None = None
            ) -> Subscription:
                raise AssertionError

            async def declare(
                self, durable: str, filters: Sequence[str], *, skip_protocols: object = ()
            ) -> None:
                return None

            def consume(
                self, durable: str, filters: Sequence[str], *, batch: int = 1, **_: object
            ) -> Consumer:
                raise AssertionError


def test_nats_url_sets_servers_and_options() -> None:
    config = NatsBusConfig.from_url(
        "nats://user:secret@n1:4222,n2:4223?stream=PLANT&prefix=org1.site2&max_age=0"
        "&max_bytes=1000&discard=new&storage=memory&replicas=3&ack_wait=1.5"
        "&max_ack_pending=10&max_inflight=5&publish_timeout=2&connect_timeout=3&name=writer-1"
    )
    assert config.servers == ("nats://user:secret@n1:4222", "nats://user:secret@n2:4223")
    assert (config.stream, config.prefix, config.stream_subjects) == (
        "PLANT",
        "org1.site2",
        "org1.site2.channels.>",
    )
    assert (config.max_age, config.max_bytes, config.discard, config.storage) == (
        0,
        1000,
        "new",
        "memory",
    )
    assert (config.replicas, config.ack_wait, config.max_ack_pending) == (3, 1.5, 10)
    assert (config.max_inflight, config.publish_timeout, config.connect_timeout) == (5, 2, 3)
    assert config.name == "writer-1"


def test_nats_url_defaults() -> None:
    config = NatsBusConfig.from_url("nats://localhost:4222")
    assert config == NatsBusConfig(servers=("nats://localhost:4222",))
    assert config.stream_subjects == "channels.>"


@pytest.mark.parametrize(
    "url",
    [
        "nats://",
        "nats://h1:4222,,h2:4222",
        "nats://h1:notaport",
        "nats://h1:4222/path",
        "nats://h1:4222?stream=a.b",
        "nats://h1:4222?prefix=a..b",
        "nats://h1:4222?discard=sometimes",
        "nats://h1:4222?ack_wait=0",
        "nats://h1:4222?replicas=0",
        "nats://h1:4222?streem=X",
    ],
)
def test_bad_nats_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidBusUrl):
        create_bus(url)


def test_url_errors_do_not_show_the_password() -> None:
    with pytest.raises(InvalidBusUrl) as caught:
        create_bus("nats://user:hunter2@h1:4222?bogus=1")
    assert "hunter2" not in str(caught.value)


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, base=0.1, cap=5.0, rng=rng) for attempt in range(60)]
    assert all(0 <= d <= min(5.0, 0.1 * 2**n) for n, d in enumerate(delays))
    assert len(set(delays)) == len(delays)  # jittered: no two clients in lockstep
    assert max(delays[10:]) > 2.5  # grown well past the base


def test_reconnect_policy_prefers_the_server_that_failed_least() -> None:
    policy = ReconnectPolicy(base=0.1, cap=5.0, seed=1)
    tired = Server(uri=urlsplit("nats://n1:4222"), reconnects=6)
    fresh = Server(uri=urlsplit("nats://n2:4222"), reconnects=0)
    chosen, delay = policy([tired, fresh], {})
    assert chosen is fresh
    assert 0 <= delay <= 0.1
