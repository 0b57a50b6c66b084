"""The protocol's pure codecs: topic names, keys, both message dialects, ids, schemas."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopfloor.aas import InvalidAasMessage
from shopfloor.aas.protocol import (
    TOPIC_PATTERN,
    InteractionIds,
    MessageKind,
    Request,
    Response,
    ResponseStatus,
    Side,
    State,
    Status,
    decode,
    encode,
    message_key,
    schemas,
    topic_for,
)


@given(st.text(min_size=1, max_size=3000), st.text(min_size=1, max_size=36))
def test_every_aas_id_makes_a_legal_topic_name(aas_id: str, org_id: str) -> None:
    topic = topic_for(org_id, aas_id)
    assert TOPIC_PATTERN.match(topic) and len(topic) <= 249
    assert topic == topic_for(org_id, aas_id)


def test_topics_read_like_the_id_and_differ_per_id_and_organisation() -> None:
    topic = topic_for("org", "https://example.org/aas/press-7")
    assert topic.startswith("aas.example_org_aas_press-7.")
    assert topic != topic_for("org", "https://example.org/aas/press_7")
    assert topic != topic_for("other-org", "https://example.org/aas/press-7")


def test_keys_name_the_sender_and_the_kind() -> None:
    assert message_key(Side.MANAGER, MessageKind.STATUS) == "manager-status"
    assert message_key(Side.CORE, MessageKind.REQUEST) == "core-service-request"
    assert message_key(Side.CORE, MessageKind.RESPONSE) == "core-service-response"
    assert (Side.MANAGER.writes, Side.CORE.writes) == (0, 1)


def test_native_messages_round_trip_as_utf8_json() -> None:
    request = Request(
        interaction_id=4,
        thread="t",
        service_id="Controls.start",
        service_type="AssetRelatedService",
        parameters={"label": "Größe"},
        timestamp=1.5,
    )
    value = encode(request)
    assert "Größe".encode() in value
    decoded = decode("manager-service-request", value)
    assert decoded.message == request and decoded.smia is None and decoded.ref == "4"
    status = Status(state=State.RUNNING, session="s1", timestamp=2)
    assert decode("core-status", encode(status)).message == status


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("core-gossip", b"{}", "not a key"),
        ("core-status", b"\xff", "not UTF-8 JSON"),
        ("core-status", b"[1]", "not a JSON object"),
        ("core-status", b'{"state": "dancing", "session": "s", "timestamp": 1}', "state"),
        (
            "core-service-request",
            b'{"interaction_id": "4", "service_id": "x", "service_type": "t", "timestamp": 1}',
            "interaction_id",
        ),
        (
            "core-service-request",
            b'{"interaction_id": 0, "service_id": "x", "service_type": "t", "timestamp": 1}',
            "interaction_id",
        ),
        (
            "core-service-response",
            b'{"interaction_id": 3, "service_id": "x", "service_type": "t", "timestamp": 1}',
            "status",
        ),
    ],
)
def test_what_is_not_a_message_is_refused_saying_why(key: str, value: bytes, reason: str) -> None:
    with pytest.raises(InvalidAasMessage, match=reason):
        decode(key, value)


def test_a_smia_request_is_read_and_its_answer_goes_back_in_kind() -> None:
    smia = {
        "interactionID": "core-3",
        "thread": "t-1",
        "serviceID": "GetSubmodelElementValue",
        "serviceType": "SubmodelService",
        "serviceData": {
            "serviceCategory": "service-request",
            "timestamp": 1700000000,
            "serviceParams": {"submodel_id": "sm", "path": "a.b"},
        },
    }
    decoded = decode("core-service-request", json.dumps(smia).encode())
    assert isinstance(decoded.message, Request)
    assert decoded.message.interaction_id == 3 and decoded.ref == "smia:core-3"
    assert decoded.message.parameters == {"submodel_id": "sm", "path": "a.b"}
    answer = Response(
        interaction_id=3,
        service_id="GetSubmodelElementValue",
        service_type="SubmodelService",
        status=ResponseStatus.FAILED,
        error="no element",
        result={},
        timestamp=2.0,
    )
    body = json.loads(encode(answer, smia=decoded.smia))
    assert body == {
        "interactionID": "core-3",
        "thread": "t-1",
        "serviceID": "GetSubmodelElementValue",
        "serviceType": "SubmodelService",
        "serviceData": {
            "serviceCategory": "service-response",
            "serviceStatus": "Failed",
            "serviceParams": {"error": "no element"},
            "timestamp": 2.0,
        },
    }
    back = decode("manager-service-response", json.dumps(body).encode())
    assert isinstance(back.message, Response) and back.message.error == "no element"
    status = decode(
        "manager-status", b'{"interactionID": "m-1", "serviceData": {"serviceStatus": "Running"}}'
    )
    assert isinstance(status.message, Status) and status.message.state is State.RUNNING


def test_interaction_ids_have_the_sides_parity_and_never_repeat_after_a_restart() -> None:
    frozen = 1_700_000_000.0
    manager = InteractionIds(Side.MANAGER, clock=lambda: frozen)
    core = InteractionIds(Side.CORE, clock=lambda: frozen)
    mine = [manager.next() for _ in range(3)]
    theirs = [core.next() for _ in range(3)]
    assert all(i % 2 == 0 for i in mine) and all(i % 2 == 1 for i in theirs)
    assert mine == sorted(set(mine)) and not set(mine) & set(theirs)
    # Started again with a clock that went back: the ids read from the log still count.
    again = InteractionIds(Side.MANAGER, clock=lambda: frozen - 60)
    for seen in mine + theirs:
        again.saw(seen)
    assert again.next() > max(mine)


def test_each_kind_has_a_json_schema_naming_its_required_fields() -> None:
    found = schemas()
    assert set(found) == set(MessageKind)
    assert {"interaction_id", "service_id", "service_type", "timestamp"} <= set(
        found[MessageKind.REQUEST]["required"]
    )
    assert "status" in found[MessageKind.RESPONSE]["required"]
    assert {"state", "session", "timestamp"} <= set(found[MessageKind.STATUS]["required"])
