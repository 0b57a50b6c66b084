"""What the trigger types do: each is an async iterator of trigger events.

    async for payload, trigger in events(doc.triggers[0], 0, org_id, subscriber): ...

`interval` fires every `seconds` (the first time `seconds` after it starts), `cron` at
the times of its expression in its time zone (`cronsim`, daylight saving time
included), through one `CronClock` timer per schedule for every flow on it; the `at` of
both is the time the event was due. `message` fires on each message of its channel
for which its `condition` holds (with `only_on_change`, only when `value`, the payload
by default, differs from the last one that fired).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from cronsim import CronSim

from ._clock import iso_at, now_iso
from ._context import Subscriber, TaskContext
from ._document import Trigger
from ._errors import FlowRunError
from ._types import CronTrigger, IntervalTrigger, MessageTrigger, TriggerType

__all__ = ["CronClock", "TriggerEvent", "events"]

logger = logging.getLogger(__name__)

#: (payload, what `trigger` binds to in the run)
TriggerEvent = tuple[Any, dict[str, Any]]


def events(
    trigger: Trigger,
    index: int,
    org_id: str,
    flow_id: str,
    subscriber: Subscriber | None,
    variables: dict[str, Any],
) -> AsyncIterator[TriggerEvent]:
    """The events of the document's trigger `index` (`variables` for its condition)."""
    kind = TriggerType.backends.get(trigger.type)
    parameters = kind.Parameters.model_validate(trigger.parameters)
    if isinstance(parameters, IntervalTrigger.Parameters):
        return _interval(parameters, index)
    if isinstance(parameters, CronTrigger.Parameters):
        raise FlowRunError(
            "cron triggers fire through a CronClock (subscribe), not as a stream of their own",
            code="flow_task_not_supported",
        )
    if isinstance(parameters, MessageTrigger.Parameters):
        if subscriber is None:
            raise FlowRunError("no bus to subscribe to here", code="flow_task_not_supported")
        return _messages(parameters, index, org_id, flow_id, subscriber, variables)
    raise FlowRunError(
        f"triggers of type {trigger.type!r} cannot run here", code="flow_task_not_supported"
    )


async def _interval(
    parameters: IntervalTrigger.Parameters, index: int
) -> AsyncIterator[TriggerEvent]:
    loop = asyncio.get_running_loop()
    due = loop.time() + parameters.seconds
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        # `at` is when it was due (as a cron trigger's is), so that a run's delay reads as
        # its first task's start minus `at`.
        at = iso_at(time.time() - (loop.time() - due))
        # Due times on a fixed grid: a slow run does not shift the ones after it.
        due = max(due + parameters.seconds, loop.time())
        yield None, {"type": "interval", "index": index, "at": at}


Clock = Callable[[zoneinfo.ZoneInfo], datetime]
Sleep = Callable[[float], Awaitable[None]]


Deliver = Callable[[TriggerEvent], None]


class CronClock:
    """One timer per cron schedule (expression and zone), for every trigger on it.

    A trigger subscribes with a `deliver` callback; at each of the schedule's times the
    clock calls every subscriber's, in one step of the loop. A thousand flows on one
    second were a thousand timers, each waking its own task to find the next time and
    hand its event on, all before the first run could start; they are one timer now,
    and their runs start right after it fires.
    """

    def __init__(self, *, now: Clock = datetime.now, sleep: Sleep = asyncio.sleep) -> None:
        self._now = now
        self._sleep = sleep
        #: Per schedule, its subscribers' calls, each given the time it fired at.
        self._schedules: dict[tuple[str, str], dict[int, Callable[[str], None]]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tokens = itertools.count()

    def subscribe(
        self, parameters: CronTrigger.Parameters, index: int, deliver: Deliver
    ) -> Callable[[], None]:
        """Call `deliver` at each of the schedule's times from now on, until the
        returned function is called."""
        key = (parameters.expression, parameters.timezone)
        subscribers = self._schedules.setdefault(key, {})
        token = next(self._tokens)

        def event(at: str) -> None:
            deliver((None, {"type": "cron", "index": index, "at": at}))

        subscribers[token] = event
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._tick(key, subscribers), name=f"flows-cron {parameters.expression}"
            )

        def unsubscribe() -> None:
            subscribers.pop(token, None)
            if not subscribers and self._schedules.get(key) is subscribers:
                del self._schedules[key]
                task = self._tasks.pop(key, None)
                if task is not None:
                    task.cancel()

        return unsubscribe

    async def _tick(
        self, key: tuple[str, str], subscribers: dict[int, Callable[[str], None]]
    ) -> None:
        expression, timezone = key
        zone = zoneinfo.ZoneInfo(timezone)
        due = self._now(zone)
        while True:
            due, at, stamp = _next_due(expression, timezone, due)
            # In seconds since the epoch: aware datetimes of one zone subtract as wall
            # clock times, an hour off across a daylight saving change.
            wait = stamp - self._now(zone).timestamp()
            if wait > 0:
                await self._sleep(wait)
            for event in list(subscribers.values()):
                try:
                    event(at)
                except Exception:  # one subscriber's failure is not the others'
                    logger.exception("a cron trigger's event was not delivered")


@lru_cache(maxsize=4096)
def _next_due(expression: str, timezone: str, after: datetime) -> tuple[datetime, str, float]:
    """The expression's next time after `after` (its ISO text, its timestamp).

    Kept: the flows on one schedule ask for the same next time when they fire together,
    and `cronsim` takes about 25 µs to find it; a thousand flows on one second paid that
    a thousand times before their first runs could start."""
    due = next(CronSim(expression, after))
    return due, due.isoformat(), due.timestamp()


_UNSET = object()


async def _messages(
    parameters: MessageTrigger.Parameters,
    index: int,
    org_id: str,
    flow_id: str,
    subscriber: Subscriber,
    variables: dict[str, Any],
) -> AsyncIterator[TriggerEvent]:
    last: Any = _UNSET
    skipped = 0
    async with subscriber.subscribe(org_id, parameters.channel_id, parameters.subtopic) as stream:
        async for message in stream:
            trigger = {
                "type": "message", "index": index, "at": now_iso(),
                "channel_id": message.channel_id, "subtopic": message.subtopic,
                "publisher": message.publisher, "content_type": message.content_type,
            }  # fmt: skip
            context = TaskContext(
                org_id=org_id, flow_id=flow_id, run_id="", payload=message.payload,
                trigger=trigger, variables=variables,
            )  # fmt: skip
            try:
                if (
                    parameters.condition is not None
                    and context.evaluate(parameters.condition) is not True
                ):
                    continue
                value = (
                    message.payload
                    if parameters.value is None
                    else context.evaluate(parameters.value)
                )
            except FlowRunError as exc:
                # Once at info (the expression does not fit the channel's messages), then
                # at debug: a busy channel would fill the log with the same line.
                level = logging.DEBUG if skipped else logging.INFO
                skipped += 1
                logger.log(level, "flow %s: message trigger skipped a message (%d so far): %s",
                           flow_id, skipped, exc)  # fmt: skip
                continue
            if parameters.only_on_change:
                if value == last:
                    continue
                last = value
            yield message.payload, trigger
