"""The API's one error shape: `{"error": {"code": "<stable_snake_case>", "message": "..."}}`.

Every capability's errors share one base (`shopfloor.core.ShopfloorError`) with a
stable code and a kind; one handler answers them all, the kind deciding the status
(`http_status`), and `unavailable`/`busy` add `Retry-After`. An error that lists its
`reasons` (every defect found, as `InvalidAasFile` does) answers them too, in
`error.reasons`, and one that has `details` (objects, as `InvalidFlow`'s problems with
their paths and codes) in `error.details`. Nothing a client sent is
echoed back in validation details, so a mistyped password never leaks into responses
or logs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopfloor.core import ErrorKind, ShopfloorError, http_status

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the API answers as is."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    reasons: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    if reasons:
        body["reasons"] = [str(reason) for reason in reasons]
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    content_type = request.headers.get("content-type", "")
    body_errors = any(e.get("loc", ("",))[0] == "body" for e in errors)
    if body_errors and content_type and not _is_json(content_type):
        return error_response(
            415, "unsupported_media_type", f"expected application/json, got {content_type}"
        )
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
        for e in errors
    ]
    return error_response(422, "validation_error", "the request is not valid", details=details)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShopfloorError)
    headers: dict[str, str] = {}
    if exc.kind is ErrorKind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="shopfloor"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if exc.transient:
        # The caller is told to retry; the operator wants to know what is down.
        logger.warning("%s %s: %s: %s", request.method, request.url.path, exc.code, exc)
    reasons = getattr(exc, "reasons", None)
    if not isinstance(reasons, Sequence) or isinstance(reasons, str):
        reasons = None
    details = getattr(exc, "details", None)
    if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
        details = None
    return error_response(
        http_status(exc.kind), exc.code, exc.message, details=details, reasons=reasons,
        headers=headers,
    )  # fmt: skip


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "an unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ShopfloorError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
