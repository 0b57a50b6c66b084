"""The MQTT side of the topic scheme: pure functions, no I/O.

A thing publishes on `channels/<channel>/messages[/<subtopic>]`. It subscribes to a
filter that names one channel literally; the MQTT wildcards `+` (one level) and `#`
(the rest, final level only) are allowed in the subtopic part and nowhere else, so a
subscription can always be authorised against exactly one channel connection.
`channels/<channel>/messages/_errors` is the one topic a publisher may subscribe to
without subscribe permission: only its own refused messages are reported there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopfloor.ingress import ERRORS_SUBTOPIC

__all__ = [
    "ChannelTopic",
    "SubscriptionFilter",
    "TopicError",
    "errors_topic",
    "message_topic",
    "parse_publish_topic",
    "parse_subscription",
    "topic_matches",
]

CHANNELS = "channels"
MESSAGES = "messages"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


class TopicError(ValueError):
    """A topic or filter outside the scheme; `channel` is set when one could be read."""

    def __init__(self, code: str, message: str, *, channel: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.channel = channel


@dataclass(frozen=True, slots=True)
class ChannelTopic:
    """Where a PUBLISH goes: the subtopic is checked by the ingress, like HTTP's."""

    channel: str
    subtopic: str


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """A filter inside the scheme; `errors` when it is the channel's `_errors` topic."""

    channel: str
    errors: bool


def message_topic(channel: str, subtopic: str = "") -> str:
    base = f"{CHANNELS}/{channel}/{MESSAGES}"
    return f"{base}/{subtopic}" if subtopic else base


def errors_topic(channel: str) -> str:
    return message_topic(channel, ERRORS_SUBTOPIC)


def _channel_levels(levels: list[str], what: str) -> str:
    if len(levels) < 3 or levels[0] != CHANNELS or levels[2] != MESSAGES:
        raise TopicError("invalid_topic", f"{what} must be channels/<channel>/messages[/...]")
    channel = levels[1]
    if not _NAME_RE.fullmatch(channel):
        raise TopicError(
            "invalid_topic", f"the channel id in a {what} is a single [A-Za-z0-9_-] level"
        )
    return channel


def parse_publish_topic(topic: str) -> ChannelTopic:
    """The channel and subtopic of a PUBLISH topic; raise `TopicError` outside the scheme."""
    levels = topic.split("/", 3)
    channel = _channel_levels(levels, "topic")
    if len(levels) == 3:
        return ChannelTopic(channel, "")
    subtopic = levels[3]
    if not subtopic:
        # `.../messages/` would otherwise pass as the empty subtopic.
        raise TopicError("invalid_subtopic", "a subtopic level may not be empty", channel=channel)
    return ChannelTopic(channel, subtopic)


def parse_subscription(topic_filter: str) -> SubscriptionFilter:
    """Check a SUBSCRIBE filter against the scheme; raise `TopicError` outside it."""
    levels = topic_filter.split("/")
    channel = _channel_levels(levels, "filter")
    rest = levels[3:]
    if rest == [ERRORS_SUBTOPIC]:
        return SubscriptionFilter(channel, errors=True)
    for index, level in enumerate(rest):
        if level == "#" and index == len(rest) - 1:
            continue
        if level != "+" and not _NAME_RE.fullmatch(level):
            raise TopicError(
                "invalid_filter",
                "subtopic filter levels are [A-Za-z0-9_-], `+`, or a final `#`",
                channel=channel,
            )
    return SubscriptionFilter(channel, errors=False)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 matching of a topic name (no wildcards) against a filter."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            # `a/#` also matches `a` itself [MQTT-4.7.1-2].
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
