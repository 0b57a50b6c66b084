"""What the trigger types do: each is an async iterator of trigger events.

    async for payload, trigger in events(doc.triggers[0], 0, org_id, subscriber): ...

`interval` fires every `seconds` (the first time `seconds` after it starts), `cron` at
the times of its expression in its time zone (`cronsim`, daylight saving time
included); the `at` of both is the time the event was due. `message` fires on each
message of its channel for which its `condition` holds (with `only_on_change`, only
when `value`, the payload by default, differs from the last one that fired).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from cronsim import CronSim

from ._clock import iso_at, now_iso
from ._context import Subscriber, TaskContext
from ._document import Trigger
from ._errors import FlowRunError
from ._types import CronTrigger, IntervalTrigger, MessageTrigger, TriggerType

__all__ = ["TriggerEvent", "events"]

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
        return _cron(parameters, index)
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


async def _cron(
    parameters: CronTrigger.Parameters,
    index: int,
    *,
    now: Clock = datetime.now,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[TriggerEvent]:
    """The expression's times after now, as local times of its zone (`cronsim` walks
    them across daylight saving changes)."""
    zone = zoneinfo.ZoneInfo(parameters.timezone)
    for due in CronSim(parameters.expression, now(zone)):
        # In seconds since the epoch: aware datetimes of one zone subtract as wall clock
        # times, an hour off across a daylight saving change.
        wait = due.timestamp() - now(zone).timestamp()
        if wait > 0:
            await sleep(wait)
        yield None, {"type": "cron", "index": index, "at": due.isoformat()}


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
