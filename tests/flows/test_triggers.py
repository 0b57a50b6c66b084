"""The cron trigger's times, in its time zone, on a clock the test moves."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from shopfloor.flows._triggers import _cron
from shopfloor.flows._types import CronTrigger


async def test_cron_fires_at_its_local_times_across_a_daylight_saving_change() -> None:
    rome = zoneinfo.ZoneInfo("Europe/Rome")
    clock = [datetime(2026, 3, 28, 23, 30, tzinfo=rome)]  # the night clocks go forward
    waits: list[float] = []

    def now(zone: zoneinfo.ZoneInfo) -> datetime:
        return clock[0].astimezone(zone)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] = (clock[0].astimezone(UTC) + timedelta(seconds=seconds)).astimezone(rome)

    parameters = CronTrigger.Parameters(expression="30 * * * *", timezone="Europe/Rome")
    fired = []
    source = _cron(parameters, 0, now=now, sleep=sleep)
    async for _, trigger in source:
        fired.append(trigger["at"])
        if len(fired) == 3:
            break
    # 00:30 and 01:30 at +01:00; 02:30 does not exist that night; then 03:30 at +02:00
    assert fired == [
        "2026-03-29T00:30:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"
    ]  # fmt: skip
    assert waits == [3600.0, 3600.0, 3600.0]  # one real hour between each
