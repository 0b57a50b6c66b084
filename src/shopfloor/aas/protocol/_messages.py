"""The messages between an AAS Manager and its Core, and their wire form (pure).

A message is a record of the shell's topic: its key says who sent it and what it is
(`manager-status`, `core-service-request`, ...), its value is a UTF-8 JSON object.
Two dialects are read: the native one below (the one this platform writes) and the
I4.0 SMIA v0.1 shape (`interactionID`, `serviceData`, ...); a request is answered in
the dialect it came in. `decode` refuses anything else with `InvalidAasMessage`.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from .._errors import InvalidAasMessage

__all__ = [
    "Decoded",
    "MessageKind",
    "Request",
    "Response",
    "ResponseStatus",
    "Side",
    "SmiaContext",
    "State",
    "Status",
    "decode",
    "encode",
    "message_key",
    "schemas",
]

MAX_MESSAGE_BYTES = 1024 * 1024


class Side(enum.StrEnum):
    MANAGER = "manager"
    CORE = "core"

    @property
    def writes(self) -> int:
        """The partition this side writes (and the other reads)."""
        return 0 if self is Side.MANAGER else 1

    @property
    def other(self) -> Side:
        return Side.CORE if self is Side.MANAGER else Side.MANAGER


class MessageKind(enum.StrEnum):
    STATUS = "status"
    REQUEST = "service-request"
    RESPONSE = "service-response"


def message_key(side: Side, kind: MessageKind) -> str:
    return f"{side.value}-{kind.value}"


class State(enum.StrEnum):
    """A side's state machine (docs/aas-protocol.md): `booting` until its own start is
    done, `booted` until the other side is `booted` or `running` too, then `running`."""

    BOOTING = "booting"
    BOOTED = "booted"
    RUNNING = "running"
    STOPPING = "stopping"
    IDLE = "idle"
    FAILED = "failed"


class ResponseStatus(enum.StrEnum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    TIMEOUT = "Timeout"


Text = Annotated[str, Field(min_length=1, max_length=1024)]
Timestamp = Annotated[StrictFloat | StrictInt, Field(ge=0)]
InteractionId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Status(_Message):
    state: State
    #: Random per run of a side: a new value means the side started again.
    session: Text
    timestamp: Timestamp
    message: str | None = None


class Request(_Message):
    interaction_id: InteractionId
    #: A conversation of several requests shares one thread; optional.
    thread: Text | None = None
    service_id: Text
    service_type: Text
    parameters: dict[str, Any] = Field(default_factory=dict)
    timestamp: Timestamp
    #: Seconds the requester waits; later the request is not carried out.
    timeout: Annotated[StrictFloat | StrictInt, Field(gt=0)] = 30.0


class Response(_Message):
    interaction_id: InteractionId
    thread: Text | None = None
    service_id: Text
    service_type: Text
    status: ResponseStatus
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    timestamp: Timestamp


Message = Status | Request | Response
_MODELS: dict[MessageKind, type[_Message]] = {
    MessageKind.STATUS: Status,
    MessageKind.REQUEST: Request,
    MessageKind.RESPONSE: Response,
}


def schemas() -> dict[MessageKind, dict[str, Any]]:
    """The JSON Schema of the native value of each kind of message (from the models)."""
    return {kind: model.model_json_schema() for kind, model in _MODELS.items()}


# -- the SMIA v0.1 dialect ------------------------------------------------------------


class _SmiaData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    serviceStatus: str | None = None
    serviceCategory: str | None = None
    serviceParams: dict[str, Any] = Field(default_factory=dict)
    timestamp: Timestamp | None = None


class _Smia(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    interactionID: Text
    thread: str | None = None
    serviceID: str | None = None
    serviceType: str | None = None
    serviceData: _SmiaData = Field(default_factory=_SmiaData)


@dataclass(frozen=True, slots=True)
class SmiaContext:
    """What a SMIA v0.1 message carried that its answer repeats."""

    interaction_id: str
    thread: str | None


_STATES = {s.value for s in State}
_STATUSES = {s.value for s in ResponseStatus}
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def _smia_number(interaction_id: str) -> int:
    found = _TRAILING_NUMBER.search(interaction_id)
    number = int(found.group(1)) if found else 0
    return number if 1 <= number < 2**63 else 0


@dataclass(frozen=True, slots=True)
class Decoded:
    side: Side
    kind: MessageKind
    message: Message
    #: Set when the message came in the SMIA v0.1 shape (answer it in kind).
    smia: SmiaContext | None = None

    @property
    def ref(self) -> str:
        """What identifies a request for "handled already" (across dialects)."""
        if self.smia is not None:
            return f"smia:{self.smia.interaction_id}"
        assert not isinstance(self.message, Status)
        return str(self.message.interaction_id)


# -- wire -----------------------------------------------------------------------------


def _parse_key(key: str) -> tuple[Side, MessageKind]:
    side, _, kind = key.partition("-")
    try:
        return Side(side), MessageKind(kind)
    except ValueError:
        raise InvalidAasMessage(f"{key!r} is not a key of the protocol") from None


def decode(key: str, value: bytes) -> Decoded:
    """A record of the topic, or `InvalidAasMessage` saying what is wrong with it."""
    side, kind = _parse_key(key)
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidAasMessage(f"a {key} of {len(value)} bytes is larger than allowed")
    try:
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidAasMessage(f"a {key} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidAasMessage(f"a {key} is not a JSON object")
    try:
        if "interactionID" in data:
            return _from_smia(side, kind, _Smia.model_validate(data))
        return Decoded(side, kind, _MODELS[kind].model_validate(data))  # type: ignore[arg-type]
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidAasMessage(f"a {key} is not valid: {reasons}") from exc


def _from_smia(side: Side, kind: MessageKind, smia: _Smia) -> Decoded:
    data = smia.serviceData
    context = SmiaContext(smia.interactionID, smia.thread)
    fields: dict[str, Any] = {
        "interaction_id": _smia_number(smia.interactionID) or 1,
        "thread": smia.thread or None,
        "service_id": smia.serviceID or "unknown",
        "service_type": smia.serviceType or "unknown",
        "timestamp": data.timestamp or 0,
    }
    message: Message
    if kind is MessageKind.STATUS:
        state = (data.serviceStatus or "").lower()
        message = Status(
            state=State(state) if state in _STATES else State.FAILED,
            session=smia.interactionID,
            timestamp=fields["timestamp"],
        )
    elif kind is MessageKind.REQUEST:
        message = Request(parameters=data.serviceParams, **fields)
    else:
        params = dict(data.serviceParams)
        raw = (data.serviceStatus or "Completed").capitalize()
        status = ResponseStatus(raw) if raw in _STATUSES else ResponseStatus.FAILED
        error = params.pop("error", None)
        message = Response(
            status=status, error=None if error is None else str(error), result=params, **fields
        )
    return Decoded(side, kind, message, smia=context)


def encode(message: Message, *, smia: SmiaContext | None = None) -> bytes:
    """The UTF-8 JSON value of `message` (in the SMIA shape when `smia` is given)."""
    if smia is None:
        body: dict[str, Any] = message.model_dump(mode="json", exclude_none=True)
    else:
        body = _to_smia(message, smia)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _to_smia(message: Message, smia: SmiaContext) -> dict[str, Any]:
    if isinstance(message, Status):
        data: dict[str, Any] = {"serviceStatus": message.state.value.capitalize()}
        return {"interactionID": smia.interaction_id, "serviceData": data}
    category: Literal["service-request", "service-response"]
    if isinstance(message, Request):
        category, params, status = "service-request", dict(message.parameters), None
    else:
        category, params, status = "service-response", dict(message.result), message.status
        if message.error is not None:
            params["error"] = message.error
    data = {"serviceCategory": category, "serviceParams": params, "timestamp": message.timestamp}
    if status is not None:
        data["serviceStatus"] = status.value
    return {
        "interactionID": smia.interaction_id,
        "thread": smia.thread if smia.thread is not None else message.thread,
        "serviceID": message.service_id,
        "serviceType": message.service_type,
        "serviceData": data,
    }
