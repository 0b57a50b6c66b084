"""The AAS HTTP API (IDTA-01002 Part 2, v3.1): `routes.router`, and the pure pieces it is
made of: base64url identifiers (`_ids`), idShortPaths (`_paths`), the value-only
serialisation (`_values`), `$metadata` (`_metadata`), `level` and `extent` (`_shape`)."""

from ._ids import decode_id, encode_id
from ._metadata import metadata, with_metadata
from ._paths import format_path, parse, resolve
from ._shape import Extent, Level, shaped
from ._values import submodel_value, value_of, with_submodel_value, with_value

__all__ = [
    "Extent",
    "Level",
    "decode_id",
    "encode_id",
    "format_path",
    "metadata",
    "parse",
    "resolve",
    "shaped",
    "submodel_value",
    "value_of",
    "with_metadata",
    "with_submodel_value",
    "with_value",
]
