"""What the bridge needs besides the connection: topics, metrics, caches (no I/O of its own)."""

from __future__ import annotations

import functools
import re
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from shopfloor.registry import Channel

__all__ = [
    "BridgeMetrics",
    "ChannelLookup",
    "ChannelOrgs",
    "RecentIds",
    "channel_topic",
    "parse_channel_topic",
]

_TOPIC = re.compile(r"channels/([^/]+)/messages(?:/(.+))?")


# Every PUBLISH asks it, and a plant's topics are few: the regular expression was 3 % of
# the bridge process under load, a cache hit a dictionary lookup.
@functools.lru_cache(maxsize=4096)
def parse_channel_topic(topic: str) -> tuple[str, str] | None:
    """`(channel, subtopic)` of `channels/<ch>/messages[/<sub>]`; None for other topics."""
    match = _TOPIC.fullmatch(topic)
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


def channel_topic(channel_id: str, subtopic: str) -> str:
    return f"channels/{channel_id}/messages" + (f"/{subtopic}" if subtopic else "")


class ChannelLookup(Protocol):
    """The part of the registry the bridge reads (`Registry` has it)."""

    async def find_channel(self, channel_id: str) -> Channel | None: ...


@dataclass(frozen=True, slots=True)
class BridgeMetrics:
    rejected: Counter
    dropped: Counter
    duplicates: Counter
    forwarded: Counter
    expired: Counter
    connects: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BridgeMetrics:
        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, text, labels, registry=registry)

        return cls(
            rejected=counter(
                "shopfloor_mqtt_rejected",
                "Messages from Mosquitto refused by the platform, by error code.",
                ("code",),
            ),
            dropped=counter(
                "shopfloor_mqtt_dropped",
                "Messages from Mosquitto ignored: no publisher stamped (they did not pass "
                "the publisher plugin), or not a channel topic.",
                ("reason",),
            ),
            duplicates=counter(
                "shopfloor_mqtt_duplicates",
                "Messages Mosquitto delivered again that the bus already held.",
            ),
            forwarded=counter(
                "shopfloor_mqtt_forwarded",
                "Messages of other protocols published to Mosquitto.",
            ),
            expired=counter(
                "shopfloor_mqtt_forward_expired",
                "Messages of other protocols not published to Mosquitto in time.",
            ),
            connects=counter(
                "shopfloor_mqtt_bridge_connects",
                "Sessions the bridge opened with Mosquitto.",
            ),
        )


class ChannelOrgs:
    """Channel id → organisation, cached: a channel never changes organisation."""

    def __init__(self, registry: ChannelLookup, *, max_entries: int = 100_000) -> None:
        self._registry = registry
        self._max_entries = max_entries
        self._orgs: dict[str, str] = {}

    async def org_of(self, channel_id: str) -> str | None:
        org_id = self._orgs.get(channel_id)
        if org_id is None:
            channel = await self._registry.find_channel(channel_id)
            if channel is None:
                return None  # not cached: the channel may be created in a moment
            if len(self._orgs) >= self._max_entries:
                self._orgs.clear()
            org_id = self._orgs[channel_id] = channel.org_id
        return org_id

    def forget(self, channel_id: str) -> None:
        self._orgs.pop(channel_id, None)


class RecentIds:
    """The last `size` message ids the bus took, to recognise redeliveries."""

    def __init__(self, size: int) -> None:
        # A set to look up, a deque for the order: cheaper per message than an OrderedDict.
        self._ids: set[str] = set()
        self._order: deque[str] = deque(maxlen=size)

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._ids

    def add(self, message_id: str) -> None:
        if message_id in self._ids:
            return
        order = self._order
        if len(order) == order.maxlen:
            self._ids.discard(order[0])  # the append below pushes it out
        order.append(message_id)
        self._ids.add(message_id)
