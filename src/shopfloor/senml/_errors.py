"""Errors raised by the SenML normalizer.

Error tree::

    ShopfloorError (shopfloor.core), ValueError
     └── SenMLError          every rejection, kind `invalid`, with a stable snake_case `code`

Foreign exceptions (``json``, ``cbor2``, ``UnicodeDecodeError``, ``RecursionError``)
are translated at the parsing boundary, so callers only ever catch `SenMLError` and
can map its `code` onto an HTTP 4xx / MQTT reason without inspecting messages.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from shopfloor.core import ErrorKind, ShopfloorError

SenMLErrorCode: TypeAlias = Literal[
    "invalid_json",
    "invalid_cbor",
    "invalid_senml",
    "unsupported_senml_version",
    "unsupported_senml_label",
    "unsupported_content_type",
    "too_many_records",
    "payload_too_deep",
    "empty_payload",
    "time_out_of_range",
    "name_too_long",
]


class SenMLError(ShopfloorError, ValueError):
    """A payload that cannot be normalised into records.

    `code` is stable and machine-readable; the message is for humans and names the
    offending entry index and field where there is one.
    """

    kind = ErrorKind.INVALID

    def __init__(self, code: SenMLErrorCode, message: str) -> None:
        super().__init__(message, code=code)

    def __reduce__(self) -> tuple[type[SenMLError], tuple[SenMLErrorCode, str]]:
        # Errors may cross process boundaries (split services); keep `code` on unpickle.
        return (type(self), (cast("SenMLErrorCode", self.code), self.message))
