"""Simulated machines that publish realistic telemetry through the real HTTP adapter.

`make run` starts them for the demo plant; `shopfloor simulate` runs them against any
server. Each machine is a small state model (a press cycling, an oven holding its
set point, a compressor loading and unloading), not random noise, so charts and alert
rules behave as they would on a plant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

logger = logging.getLogger(__name__)


class Machine(ABC):
    """A simulated machine; subclasses register by `profile` name."""

    profiles: ClassVar[dict[str, type[Machine]]] = {}
    profile: ClassVar[str]

    def __init_subclass__(cls, *, profile: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if profile in Machine.profiles:
            raise TypeError(f"machine profile {profile!r} registered twice")
        cls.profile = profile
        Machine.profiles[profile] = cls

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        self.name = name
        self.random = random.Random(seed)  # noqa: S311 - simulation, not security
        self.started = time.time()

    @abstractmethod
    def sample(self, now: float) -> list[dict[str, Any]]:
        """SenML records (without base name) for the instant `now`."""

    def pack(self, now: float) -> list[dict[str, Any]]:
        records = self.sample(now)
        records[0] = {"bn": f"{self.name}:", "bt": round(now, 3), **records[0]}
        return records


class Press(Machine, profile="press"):
    """A hydraulic press: 6 s stroke cycle, oil warming with load, stroke counter."""

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        super().__init__(name, seed=seed)
        self.strokes = 0
        self.oil = 38.0
        self.was_pressing = False

    def sample(self, now: float) -> list[dict[str, Any]]:
        phase = (now - self.started) % 6.0 / 6.0
        pressing = phase < 0.4
        pressure = 180.0 * math.sin(math.pi * phase / 0.4) if pressing else 4.0
        if self.was_pressing and not pressing:
            self.strokes += 1  # a stroke ends
        self.was_pressing = pressing
        self.oil += (0.02 if pressing else -0.01) + self.random.gauss(0, 0.01)
        self.oil = min(max(self.oil, 35.0), 65.0)
        return [
            {"n": "pressure", "u": "bar", "v": round(pressure + self.random.gauss(0, 1.5), 2)},
            {"n": "oil-temp", "u": "Cel", "v": round(self.oil, 2)},
            {"n": "strokes", "v": self.strokes},
            {"n": "pressing", "vb": pressing},
        ]


class Oven(Machine, profile="oven"):
    """A curing oven holding 180 °C with an on/off heater and slow thermal lag."""

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        super().__init__(name, seed=seed)
        self.temperature = 175.0
        self.heating = True

    def sample(self, now: float) -> list[dict[str, Any]]:
        if self.temperature > 181.5:
            self.heating = False
        elif self.temperature < 178.5:
            self.heating = True
        self.temperature += (0.6 if self.heating else -0.4) + self.random.gauss(0, 0.05)
        return [
            {"n": "temperature", "u": "Cel", "v": round(self.temperature, 2)},
            {"n": "setpoint", "u": "Cel", "v": 180.0},
            {"n": "heater", "vb": self.heating},
            {"n": "door", "vs": "closed"},
        ]


class Compressor(Machine, profile="compressor"):
    """A screw compressor loading between 6.5 and 7.5 bar."""

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        super().__init__(name, seed=seed)
        self.pressure = 7.0
        self.loaded = True
        self.energy = 0.0

    def sample(self, now: float) -> list[dict[str, Any]]:
        if self.pressure >= 7.5:
            self.loaded = False
        elif self.pressure <= 6.5:
            self.loaded = True
        self.pressure += (0.05 if self.loaded else -0.03) + self.random.gauss(0, 0.005)
        current = (62.0 if self.loaded else 21.0) + self.random.gauss(0, 0.8)
        self.energy += current * 0.4 / 3600
        return [
            {"n": "pressure", "u": "bar", "v": round(self.pressure, 3)},
            {"n": "motor-current", "u": "A", "v": round(current, 1)},
            {"n": "energy", "u": "kWh", "s": round(self.energy, 4)},
            {"n": "loaded", "vb": self.loaded},
        ]


class Mill(Machine, profile="mill"):
    """A CNC mill: 40 s jobs, each at its own spindle speed, with a 10 s setup between
    them; the spindle warms towards a temperature set by its speed and cools at rest."""

    JOB_SECONDS = 40.0
    SETUP_SECONDS = 10.0
    SPEEDS = (6000.0, 8000.0, 12000.0)

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        super().__init__(name, seed=seed)
        self.temperature = 24.0
        self.parts = 0
        self.job = -1
        self.speed = 0.0

    def sample(self, now: float) -> list[dict[str, Any]]:
        cycle = self.JOB_SECONDS + self.SETUP_SECONDS
        job, into = divmod(now - self.started, cycle)
        if job != self.job:
            if self.job >= 0:
                self.parts += int(job - self.job)  # a job ends with a part
            self.job = int(job)
            self.speed = self.random.choice(self.SPEEDS)
        running = into < self.JOB_SECONDS
        speed = self.speed + self.random.gauss(0, 15) if running else 0.0
        settled = 24.0 + speed / 300  # about 64 °C at 12,000 rpm
        self.temperature += (settled - self.temperature) * 0.05 + self.random.gauss(0, 0.05)
        return [
            {"n": "temperature", "u": "Cel", "v": round(self.temperature, 2)},
            {"n": "spindle-speed", "u": "1/min", "v": round(speed, 1)},
            {"n": "state", "vs": "running" if running else "setup"},
            {"n": "parts", "v": self.parts},
        ]


def profile_for(thing_name: str) -> str:
    """The profile a demo thing name suggests (`press-01` → press)."""
    for profile in Machine.profiles:
        if thing_name.startswith(profile):
            return profile
    return "press"


@dataclass(frozen=True, slots=True)
class SimulatedThing:
    name: str
    key: str
    profile: str


@dataclass
class SimulationStats:
    sent: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def simulate(
    server: str,
    channel_id: str,
    things: Sequence[SimulatedThing],
    *,
    interval: float = 1.0,
    count: int | None = None,
    stats: SimulationStats | None = None,
) -> SimulationStats:
    """Publish one pack per thing every `interval` s (`count` rounds, or until cancelled)."""
    stats = stats or SimulationStats()
    machines = [(t, Machine.profiles[t.profile](t.name)) for t in things]
    url = f"{server.rstrip('/')}/http/channels/{channel_id}/messages"
    async with httpx.AsyncClient(timeout=10) as http:
        round_number = 0
        while count is None or round_number < count:
            started = time.monotonic()
            await asyncio.gather(*(_send(http, url, t, m, stats) for t, m in machines))
            round_number += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    return stats


async def _send(
    http: httpx.AsyncClient,
    url: str,
    thing: SimulatedThing,
    machine: Machine,
    stats: SimulationStats,
) -> None:
    body = json.dumps(machine.pack(time.time()))
    try:
        response = await http.post(
            url,
            content=body,
            headers={
                "Authorization": f"Thing {thing.key}",
                "Content-Type": "application/senml+json",
            },
        )
    except httpx.HTTPError as exc:
        stats.errors[type(exc).__name__] = stats.errors.get(type(exc).__name__, 0) + 1
        logger.warning("simulated %s could not reach the server: %s", thing.name, exc)
        return
    if response.status_code == 202:
        stats.sent += 1
        return
    stats.refused += 1
    code = response.json().get("error", {}).get("code", str(response.status_code))
    stats.errors[code] = stats.errors.get(code, 0) + 1
    logger.warning("simulated %s was refused: %s", thing.name, code)


async def simulate_bootstrapped(
    bootstrap_url: str,
    external_id: str,
    external_key: str,
    *,
    profile: str = "press",
    interval: float = 1.0,
    count: int | None = None,
    stats: SimulationStats | None = None,
) -> SimulationStats:
    """One machine that knows only its bootstrap credentials: it bootstraps (secure),
    then publishes on the first channel of its configuration with the thing key it got,
    through the HTTP adapter at the `http_url` it was told (else the bootstrap URL)."""
    from shopfloor.sdk import abootstrap

    config = await abootstrap(bootstrap_url, external_id, external_key)
    if not config.channels:
        raise ValueError(f"the bootstrap configuration of {external_id} lists no channel")
    logger.info(
        "bootstrapped %s as thing %s (state %d)", external_id, config.thing_id, config.state
    )
    thing = SimulatedThing(external_id, config.thing_key, profile)
    server = config.http_url or bootstrap_url
    return await simulate(
        server, config.channels[0].id, [thing], interval=interval, count=count, stats=stats
    )
