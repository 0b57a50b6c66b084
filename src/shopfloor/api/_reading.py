"""What every reader of stored messages shares: the readers API and the console's data
explorer build their `Query` with the same checks, authorise a user the same way, and
write the same CSV."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from fastapi.responses import StreamingResponse

from shopfloor.auth import Principal
from shopfloor.registry import Channel, Registry
from shopfloor.storage import QUERY_PARAMETERS, Page
from shopfloor.storage import Query as ReadQuery

from ._errors import ApiError

__all__ = ["CSV_COLUMNS", "csv_response", "reader_channel", "reader_query"]

CSV_COLUMNS = (
    "channel", "subtopic", "publisher", "protocol", "name", "unit", "time",
    "value", "string_value", "bool_value", "data_value", "sum",
)  # fmt: skip
FORMATS = ("json", "csv")
PARAMETERS = QUERY_PARAMETERS | {"format"}
# A text cell starting with one of these is a formula to Excel, LibreOffice and Google
# Sheets (OWASP "CSV injection"); a leading apostrophe makes it text again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def reader_channel(registry: Registry, principal: Principal, channel_id: str) -> Channel:
    """The channel, if it is of the reading user's organisation (404 otherwise)."""
    return await registry.get_channel(principal.require_org(), channel_id)


def reader_query(
    channel_id: str, params: Mapping[str, str], *, known: Collection[str] = PARAMETERS
) -> ReadQuery:
    """The query the readers parameters ask for; every bad or unknown one is a 400
    naming it (`invalid_<parameter>`, `unknown_parameter`), with the store's messages."""
    for key in params:
        if key not in known:
            names = sorted(known)
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names)}"
            raise ApiError(400, "unknown_parameter", f"unknown parameter {key[:64]!r}{hint}")
    if params.get("format", "json") not in FORMATS:
        raise ApiError(
            400,
            "invalid_format",
            f"format must be one of {', '.join(FORMATS)}, not {params['format'][:64]!r}",
        )
    return ReadQuery.from_params(channel_id, params)  # InvalidQuery: 400 by its kind


def csv_response(page: Page, *, filename: str) -> StreamingResponse:
    """A page of stored messages as a CSV download, its `total` in `X-Total-Count`."""
    rows = [message.to_reader_json() for message in page.messages]
    return StreamingResponse(
        _csv(rows),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Total-Count": str(page.total),
        },
    )


def _csv_cell(value: object) -> object:
    """A reader field as a CSV cell: booleans as JSON writes them, text made inert.

    Numbers are written as numbers (a negative value stays `-12.5`); every text cell
    that a spreadsheet would run as a formula gets a leading `'`, whatever follows,
    since `-2+3` is a formula too. That includes `string_value`s that look like
    negative numbers: they were sent as text.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
