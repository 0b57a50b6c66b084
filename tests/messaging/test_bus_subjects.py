"""The subject scheme and the wire encoding: pure functions, checked by example and property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopfloor.messaging import (
    MAX_SUBTOPIC_LENGTH,
    Envelope,
    EnvelopeDecodeError,
    InvalidSubject,
    channel_filters,
    decode_envelope,
    encode_envelope,
    envelope_subject,
    is_valid_subtopic,
    parse_subject,
    subject_matches,
)
from shopfloor.messaging._subjects import (
    covering_filter,
    filter_covers,
    reduce_filters,
    validate_filter,
)

from .bus_testkit import make_envelope


@pytest.mark.parametrize(
    ("channel", "subtopic", "prefix", "subject"),
    [
        ("c1", "", "", "channels.c1"),
        ("c1", "temp", "", "channels.c1.temp"),
        ("c-1_x", "a/b-2/c_3", "", "channels.c-1_x.a.b-2.c_3"),
        ("c1", "a/b", "tenant1", "tenant1.channels.c1.a.b"),
        ("c1", "", "org.site", "org.site.channels.c1"),
    ],
)
def test_subject_of_an_envelope(channel: str, subtopic: str, prefix: str, subject: str) -> None:
    envelope = make_envelope(channel, subtopic)
    assert envelope_subject(envelope, prefix=prefix) == subject
    assert parse_subject(subject, prefix=prefix) == (channel, subtopic)


@pytest.mark.parametrize(
    ("channel", "subtopic"),
    [("", ""), ("a.b", ""), ("*", ""), (">", ""), ("a b", ""), ("c1", "a//b"), ("c1", "a.b")],
)
def test_invalid_channel_or_subtopic_has_no_subject(channel: str, subtopic: str) -> None:
    with pytest.raises(InvalidSubject):
        envelope_subject(make_envelope(channel, subtopic))


def test_subtopics_are_bounded_in_length() -> None:
    longest = "abcdefg/" * 127 + "abcdefgh"

    assert MAX_SUBTOPIC_LENGTH == 1024
    assert is_valid_subtopic(longest)
    assert not is_valid_subtopic(longest + "h")
    assert not is_valid_subtopic("a/" * 30_000 + "a")


@pytest.mark.parametrize(
    ("subject", "prefix"),
    [
        ("channels", ""),
        ("other.c1", ""),
        ("channels.c1", "tenant"),
        ("tenantx.channels.c1", "tenant"),
        ("channels.c 1", ""),
        ("channels.c1..x", ""),
    ],
)
def test_foreign_subjects_do_not_parse(subject: str, prefix: str) -> None:
    with pytest.raises(EnvelopeDecodeError):
        parse_subject(subject, prefix=prefix)


def test_channel_filters_cover_the_channel_and_nothing_else() -> None:
    filters = channel_filters("c1")
    assert filters == ("channels.c1", "channels.c1.>")
    assert channel_filters("c1", prefix="t") == ("t.channels.c1", "t.channels.c1.>")
    for subject in ("channels.c1", "channels.c1.a", "channels.c1.a.b"):
        assert any(subject_matches(f, subject) for f in filters)
    for subject in ("channels.c10", "channels.c2.c1", "channels"):
        assert not any(subject_matches(f, subject) for f in filters)


@pytest.mark.parametrize(
    ("subject_filter", "subject", "matches"),
    [
        ("channels.c1", "channels.c1", True),
        ("channels.c1", "channels.c1.a", False),
        ("channels.*", "channels.c1", True),
        ("channels.*", "channels.c1.a", False),
        ("channels.*.a", "channels.c1.a", True),
        ("channels.*.a", "channels.c1.b", False),
        ("channels.>", "channels.c1", True),
        ("channels.>", "channels.c1.a.b", True),
        ("channels.c1.>", "channels.c1", False),
        ("channels.c1.>", "channels.c1.x", True),
        ("channels.c1.*.>", "channels.c1.x", False),
        ("channels.c1.*.>", "channels.c1.x.y", True),
    ],
)
def test_subject_matches_follows_nats_wildcards(
    subject_filter: str, subject: str, matches: bool
) -> None:
    assert subject_matches(subject_filter, subject) is matches


@pytest.mark.parametrize(
    "bad", ["", "channels", "other.>", "channels.>.x", "channels.a*", "channels..x", "channels. "]
)
def test_invalid_filters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSubject):
        validate_filter(bad)


@pytest.mark.parametrize(
    ("filters", "covering"),
    [
        (["channels.c1.>"], "channels.c1.>"),
        (["channels.c1", "channels.c1.>"], "channels.>"),
        (["channels.c1.a", "channels.c1.b"], "channels.c1.>"),
        (["channels.c1.a.>", "channels.c1.b.x"], "channels.c1.>"),
        (["channels.*.a", "channels.*.b"], "channels.*.>"),
        (["channels.>", "channels.c1.a"], "channels.>"),
    ],
)
def test_covering_filter_is_the_narrowest_simple_one(filters: list[str], covering: str) -> None:
    assert covering_filter(filters) == covering


def test_reduce_filters_drops_covered_and_repeated_filters() -> None:
    assert reduce_filters(["channels.a.x", "channels.a.>", "channels.b", "channels.a.>"]) == (
        "channels.a.>",
        "channels.b",
    )


_subjects = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4).map(
    lambda parts: ".".join(["channels", *parts])
)
_filters = st.builds(
    lambda middle, tail: ".".join(["channels", *middle, *tail]),
    st.lists(st.sampled_from(["a", "b", "*"]), min_size=0, max_size=3),
    st.sampled_from([[], [">"], ["c"]]),
).filter(lambda f: f != "channels")


@given(wide=_filters, narrow=_filters, subject=_subjects)
def test_a_covering_filter_matches_all_that_the_covered_one_matches(
    wide: str, narrow: str, subject: str
) -> None:
    if filter_covers(wide, narrow) and subject_matches(narrow, subject):
        assert subject_matches(wide, subject)


@given(filters=st.lists(_filters, min_size=1, max_size=4), subject=_subjects)
def test_reduced_and_covering_filters_lose_no_subject(filters: list[str], subject: str) -> None:
    matched = any(subject_matches(f, subject) for f in filters)
    assert matched == any(subject_matches(f, subject) for f in reduce_filters(filters))
    if matched:
        assert subject_matches(covering_filter(filters), subject)


_text = st.text(max_size=40)


@given(
    publisher=_text,
    protocol=_text,
    content_type=_text,
    payload=st.binary(max_size=200),
    created=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    message_id=_text.filter(bool),
)
def test_encoding_round_trips_every_field(
    publisher: str, protocol: str, content_type: str, payload: bytes, created: int, message_id: str
) -> None:
    sent = Envelope(
        channel="c1",
        subtopic="a/b",
        publisher=publisher,
        protocol=protocol,
        payload=payload,
        content_type=content_type,
        created=created,
        id=message_id,
    )
    headers, body = encode_envelope(sent)
    assert body == payload
    for value in headers.values():
        # What NATS would alter: surrounding spaces, line breaks, non-ASCII.
        assert value == value.strip() and value.isascii() and value.isprintable()
    received = decode_envelope(envelope_subject(sent, prefix="t"), headers, body, prefix="t")
    assert received == sent


def test_message_id_header_is_the_envelope_id() -> None:
    envelope = make_envelope("c1")
    headers, _ = encode_envelope(envelope)
    assert headers["Nats-Msg-Id"] == envelope.id


def _good_headers() -> dict[str, str]:
    return encode_envelope(make_envelope("c1"))[0]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda h: h.pop("Shopfloor-Publisher"),
        lambda h: h.pop("Nats-Msg-Id"),
        lambda h: h.update({"Nats-Msg-Id": ""}),
        lambda h: h.update({"Shopfloor-Created": "1_000"}),
        lambda h: h.update({"Shopfloor-Created": "soon"}),
        lambda h: h.update({"Content-Type": "%ff%fe"}),
    ],
)
def test_malformed_headers_are_decode_errors(spoil: object) -> None:
    headers = _good_headers()
    assert callable(spoil)
    spoil(headers)
    with pytest.raises(EnvelopeDecodeError):
        decode_envelope("channels.c1", headers, b"")


def test_messages_without_headers_are_decode_errors() -> None:
    with pytest.raises(EnvelopeDecodeError):
        decode_envelope("channels.c1", None, b"{}")
