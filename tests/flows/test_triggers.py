"""The cron trigger's times, in its time zone, on a clock the test moves."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfloor.flows._triggers import CronClock
from shopfloor.flows._types import CronTrigger


async def test_cron_fires_at_its_local_times_across_a_daylight_saving_change() -> None:
    rome = zoneinfo.ZoneInfo("Europe/Rome")
    time = [datetime(2026, 3, 28, 23, 30, tzinfo=rome)]  # the night clocks go forward
    waits: list[float] = []

    def now(zone: zoneinfo.ZoneInfo) -> datetime:
        return time[0].astimezone(zone)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        time[0] = (time[0].astimezone(UTC) + timedelta(seconds=seconds)).astimezone(rome)
        await asyncio.sleep(0)  # the clock's loop yields as a real sleep would

    parameters = CronTrigger.Parameters(expression="30 * * * *", timezone="Europe/Rome")
    fired: list[str] = []
    three = asyncio.Event()
    clock = CronClock(now=now, sleep=sleep)

    def deliver(event: tuple[Any, dict[str, Any]]) -> None:
        fired.append(event[1]["at"])
        if len(fired) == 3:
            three.set()

    unsubscribe = clock.subscribe(parameters, 0, deliver)
    try:
        await asyncio.wait_for(three.wait(), 10)
    finally:
        unsubscribe()
    fired = fired[:3]
    # 00:30 and 01:30 at +01:00; 02:30 does not exist that night; then 03:30 at +02:00
    assert fired == [
        "2026-03-29T00:30:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"
    ]  # fmt: skip
    assert waits[:3] == [3600.0, 3600.0, 3600.0]  # one real hour between each
