"""One mapping of the project's exceptions to HTTP answers, and the error body every route returns.

Every error answer is ``{"error": "<one line: what is wrong and how to fix it>", ...extra}`` (see
:class:`~fashionsearchnet.app.server.models.ErrorBody`). Client mistakes are 4xx; a 5xx means the server side
is at fault (a catalogue file missing, a failed load) and is logged once, in one line.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from fashionsearchnet.errors import (
    CatalogueFileError,
    FSNError,
    GalleryError,
    ImageError,
    ImageTooLargeError,
    SchemaError,
    UsageError,
    one_line,
)

log = logging.getLogger(__name__)

# project exception -> HTTP status (first match wins: subclasses before their base)
STATUS: tuple[tuple[type[FSNError], int], ...] = (
    (CatalogueFileError, 500),  # the gallery points at an image that is missing or outside its catalogue
    (ImageTooLargeError, 413),
    (ImageError, 400),
    (SchemaError, 422),
    (UsageError, 422),
    (GalleryError, 404),
)


class ClientError(Exception):
    """An answer decided by the service itself: status, one-line message and optional extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, one_line(message), extra


class BodyTooLarge(Exception):
    """Raised by the body-limit middleware while a streamed body passes the limit."""


def status_of(e: FSNError) -> int:
    """The HTTP status of a project exception (500 for any not listed: a server-side fault)."""
    return next((s for cls, s in STATUS if isinstance(e, cls)), 500)


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": one_line(message), **extra}


def too_large_body(limit: int, n: int | None = None) -> dict[str, Any]:
    got = f"{n} bytes" if n is not None else "more"
    return error_body(f"request body is {got}, over the {limit} byte limit; send a smaller image "
                      "(e.g. a 1600 px JPEG)", limit_bytes=limit)


def fsn_error_response(e: FSNError) -> JSONResponse:
    status = status_of(e)
    if status >= 500:
        log.error("server-side error: %s", one_line(str(e)))
    return JSONResponse(error_body(str(e)), status_code=status)


def install(app: FastAPI, max_upload_bytes: int) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ClientError)
    async def _client_error(request: Request, e: ClientError):
        return JSONResponse(error_body(e.message, **e.extra), status_code=e.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, e: BodyTooLarge):
        return JSONResponse(too_large_body(max_upload_bytes), status_code=413, headers={"connection": "close"})

    @app.exception_handler(FSNError)
    async def _fsn_error(request: Request, e: FSNError):
        return fsn_error_response(e)

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, e: ClientDisconnect):
        # the client went away while sending its body: nobody is left to answer, one line in the log
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info("%s disconnected before sending the whole request body (%s %s)", client, request.method,
                 request.url.path)
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(error_body(f"{where}: {first.get('msg', 'invalid')}; see /openapi.json",
                                       detail=_jsonable(errs)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return JSONResponse(error_body(str(e.detail)), status_code=e.status_code)


def _jsonable(errs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic error dicts without their non-JSON parts (``ctx`` may hold exception objects)."""
    return [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in errs]
