"""SenML normalizer (RFC 8428): SenML JSON, SenML CBOR and plain JSON into resolved records."""

from ._cbor import parse_senml_cbor
from ._errors import SenMLError, SenMLErrorCode
from ._flatten import flatten_json
from ._json import parse_senml_json
from ._normalize import SUPPORTED_CONTENT_TYPES, normalize
from ._record import EARLIEST_TIME, LATEST_TIME, MAX_NAME_BYTES, Record

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_NAME_BYTES",
    "SUPPORTED_CONTENT_TYPES",
    "Record",
    "SenMLError",
    "SenMLErrorCode",
    "flatten_json",
    "normalize",
    "parse_senml_cbor",
    "parse_senml_json",
]
