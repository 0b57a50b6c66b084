"""The MQTT topic scheme as pure functions: publish topics, subscription filters, matching."""

from __future__ import annotations

import pytest

from shopfloor.adapters.mqtt import errors_topic, message_topic
from shopfloor.adapters.mqtt._topics import (
    ChannelTopic,
    SubscriptionFilter,
    TopicError,
    parse_publish_topic,
    parse_subscription,
    topic_matches,
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("channels/c1/messages", ChannelTopic("c1", "")),
        ("channels/c1/messages/temp", ChannelTopic("c1", "temp")),
        ("channels/c-1_x/messages/line/3/temp", ChannelTopic("c-1_x", "line/3/temp")),
        # the ingress checks subtopic characters (as for HTTP) and reports them
        ("channels/c1/messages/a+b", ChannelTopic("c1", "a+b")),
    ],
)
def test_publish_topics_in_the_scheme(topic: str, expected: ChannelTopic) -> None:
    assert parse_publish_topic(topic) == expected


@pytest.mark.parametrize(
    ("topic", "code", "channel"),
    [
        ("channels/c1", "invalid_topic", None),
        ("channels/c1/other", "invalid_topic", None),
        ("devices/c1/messages", "invalid_topic", None),
        ("channels/c.1/messages", "invalid_topic", None),
        ("channels//messages", "invalid_topic", None),
        ("$SYS/broker", "invalid_topic", None),
        ("channels/c1/messages/", "invalid_subtopic", "c1"),
    ],
)
def test_publish_topics_outside_the_scheme(topic: str, code: str, channel: str | None) -> None:
    with pytest.raises(TopicError) as raised:
        parse_publish_topic(topic)
    assert (raised.value.code, raised.value.channel) == (code, channel)


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("channels/c1/messages", SubscriptionFilter("c1", errors=False)),
        ("channels/c1/messages/#", SubscriptionFilter("c1", errors=False)),
        ("channels/c1/messages/+/temp", SubscriptionFilter("c1", errors=False)),
        ("channels/c1/messages/line/+/#", SubscriptionFilter("c1", errors=False)),
        ("channels/c1/messages/_errors", SubscriptionFilter("c1", errors=True)),
    ],
)
def test_subscriptions_in_the_scheme(topic_filter: str, expected: SubscriptionFilter) -> None:
    assert parse_subscription(topic_filter) == expected


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "channels/#",
        "channels/+/messages",
        "channels/c1/#",
        "channels/c1/+",
        "channels/c1/messages/#/temp",
        "channels/c1/messages/a#",
        "channels/c1/messages/a+",
        "channels/c1/messages//x",
        "+/c1/messages",
    ],
)
def test_wildcards_only_in_the_subtopic(topic_filter: str) -> None:
    with pytest.raises(TopicError):
        parse_subscription(topic_filter)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("channels/c/messages", "channels/c/messages", True),
        ("channels/c/messages", "channels/c/messages/a", False),
        ("channels/c/messages/#", "channels/c/messages", True),
        ("channels/c/messages/#", "channels/c/messages/a/b", True),
        ("channels/c/messages/+", "channels/c/messages/a", True),
        ("channels/c/messages/+", "channels/c/messages/a/b", False),
        ("channels/c/messages/+", "channels/c/messages", False),
        ("channels/c/messages/+/t", "channels/c/messages/a/t", True),
        ("channels/c/messages/+/t", "channels/c/messages/a/u", False),
        ("channels/c/messages/a", "channels/c/messages/ab", False),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


def test_topic_names() -> None:
    assert message_topic("c1") == "channels/c1/messages"
    assert message_topic("c1", "a/b") == "channels/c1/messages/a/b"
    assert errors_topic("c1") == "channels/c1/messages/_errors"
