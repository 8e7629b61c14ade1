"""The local HTTP service and kiosk page (FastAPI on uvicorn). No torch.

``create_app(backend)`` builds the ASGI app around a :class:`~fashionsearchnet.app.kiosk_backend.SearchBackend`:

- ``GET /``: the kiosk page (``app/static/``); ``GET /static/...``: its script and style.
- ``GET /health``: 503 ``{"status": "loading"}`` until the model is loaded and warmed up, then 200.
- ``GET /attributes``: schema, values, regions and their askable attributes.
- ``GET /items?offset=&limit=&filter=attr=value``: the catalogue, paged.
- ``GET /items/{id}/image``: a gallery item's image file.
- ``POST /search``: multipart (``image`` file, or ``item_id``; ``sets``, ``filters`` repeated; ``k``) or JSON
  (``{"item_id", "sets", "filters", "k"}``) -> the query's predicted attributes and attention boxes (image
  pixels) and the ranked results.
- ``GET /openapi.json``: the OpenAPI spec (no /docs page: FastAPI's pulls scripts from a CDN).

Client mistakes never give a 500: too large a body -> 413, not an image -> 400, malformed JSON -> 400,
unknown attribute/value/region -> 422 with the valid choices, unknown item -> 404. Model work runs in a
thread pool bounded by ``concurrency``; the event loop keeps serving other clients meanwhile.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from fashionsearchnet.app.kiosk_backend import Answer, SearchBackend, check_k, schema_description
from fashionsearchnet.data.preprocess import decode_image
from fashionsearchnet.errors import FSNError, GalleryError, ImageError, RequestError, SchemaError, UsageError, one_line
from fashionsearchnet.search.request import Request as SearchRequest

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Limits:
    """Bounds on what a client may send."""

    max_upload_bytes: int = 10 * 1024 * 1024  # whole request body
    max_side: int = 8192  # decoded image width or height
    max_pixels: int = 40_000_000
    k_max: int = 100
    k_default: int = 12
    page_max: int = 200
    concurrency: int = 2  # model/search calls running at once (the rest wait, off the event loop)


class ClientError(Exception):
    """A 4xx answer: status, one-line message and optional extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, one_line(message), extra


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 (by Content-Length up front, or while
    streaming a chunked body)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0:
                await _send_json(send, 400, {"error": f"Content-Length {length.decode(errors='replace')!r} is not a "
                                                      "byte count; send a valid header"})
                return
            if n > self.max_bytes:
                await _send_json(send, 413, self._message(n))
                return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)

    def _message(self, n: int | None) -> dict:
        got = f"{n} bytes" if n is not None else "more"
        return {"error": f"request body is {got}, over the {self.max_bytes} byte limit; send a smaller image "
                         "(e.g. a 1600 px JPEG)", "limit_bytes": self.max_bytes}


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class _State:
    """Loading state shared between the loader thread and the request handlers."""

    def __init__(self) -> None:
        self.status = "loading"
        self.error: str | None = None
        self.loaded_s: float | None = None
        self.limiter: anyio.CapacityLimiter | None = None


SEARCH_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "image": {"type": "string", "format": "binary", "description": "query photo (JPEG/PNG/WEBP)"},
                "item_id": {"type": "string", "description": "or a gallery item id as the query"},
                "sets": {"type": "array", "items": {"type": "string"},
                         "description": "manipulations: attr=value or region:attr=value (repeat the field)"},
                "filters": {"type": "array", "items": {"type": "string"},
                            "description": "attr=value or metadata_column=value (repeat the field)"},
                "k": {"type": "integer", "minimum": 1}}}},
            "application/json": {"schema": {"type": "object", "properties": {
                "item_id": {"type": "string"},
                "sets": {"type": "array", "items": {"type": "string"}, "example": ["color=red", "sleeve:color=blue"]},
                "filters": {"type": "array", "items": {"type": "string"}},
                "k": {"type": "integer", "minimum": 1}}, "required": ["item_id"]}},
        },
    },
    "responses": {"400": {"description": "not an image, malformed JSON or form"},
                  "404": {"description": "unknown item id"},
                  "413": {"description": "upload or image too large"},
                  "422": {"description": "unknown attribute/value/region (lists the valid ones) or bad k"},
                  "503": {"description": "model still loading"}},
}


def create_app(backend: SearchBackend, limits: Limits | None = None, load_in_background: bool = True,
               on_load_failed: Callable[[str], None] | None = None) -> FastAPI:
    """The FastAPI app around ``backend``; ``backend.load()`` runs in a thread at start-up (/health 503 until done).

    ``on_load_failed(message)`` is called when loading raises (``fsn serve`` stops the server and exits 2)."""
    limits = limits or Limits()
    state = _State()

    def _load() -> None:
        t0 = time.perf_counter()
        try:
            backend.load()
        except Exception as e:  # reported by /health and the log; the process keeps answering 503
            state.status, state.error = "failed", one_line(str(e))
            log.error("loading failed: %s", state.error, exc_info=not isinstance(e, FSNError))
            if on_load_failed is not None:
                on_load_failed(state.error)
            return
        state.loaded_s = time.perf_counter() - t0
        state.status = "ready"
        log.info("model and gallery loaded and warmed up in %.1f s", state.loaded_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.limiter = anyio.CapacityLimiter(limits.concurrency)
        if load_in_background:
            threading.Thread(target=_load, name="fsn-load", daemon=True).start()
        else:
            await anyio.to_thread.run_sync(_load)
        yield

    # /docs and /redoc are off: FastAPI serves them with scripts from a CDN, and kiosks are offline.
    app = FastAPI(title="FashionSearchNet Edge kiosk service", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Attribute- and region-manipulable fashion search (Ak et al., CVPR 2018) on a kiosk.")
    app.state.fsn = state
    app.state.backend = backend

    # ---- errors -----------------------------------------------------------------------------------
    @app.exception_handler(ClientError)
    async def _client_error(request: Request, e: ClientError):
        return JSONResponse({"error": e.message, **e.extra}, status_code=e.status)

    @app.exception_handler(_BodyTooLarge)
    async def _too_large(request: Request, e: _BodyTooLarge):
        return JSONResponse(BodyLimit(None, limits.max_upload_bytes)._message(None), status_code=413,
                            headers={"connection": "close"})

    @app.exception_handler(FSNError)
    async def _fsn_error(request: Request, e: FSNError):
        return _error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": one_line(f"{where}: {first.get('msg', 'invalid')}; see /openapi.json"), "detail": errs},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return JSONResponse({"error": one_line(str(e.detail))}, status_code=e.status_code)

    def _ready() -> None:
        if state.status != "ready":
            msg = "the model is still loading; retry in a moment" if state.status == "loading" else \
                f"the service failed to load: {state.error}"
            raise ClientError(503, msg, state=state.status)

    async def _run(fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=state.limiter)

    # ---- routes -----------------------------------------------------------------------------------
    @app.get("/health", summary="200 once the model is loaded and warmed up, 503 before")
    async def health():
        body: dict[str, Any] = {"status": state.status}
        if state.status == "ready":
            body.update(backend.describe())
            body["loaded_s"] = round(state.loaded_s or 0.0, 2)
            return body
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, status_code=503)

    @app.get("/attributes", summary="schema: attributes and values, regions and their askable attributes")
    async def attributes():
        _ready()
        return schema_description(backend.schema)

    @app.get("/items", summary="the catalogue (searchable gallery items), paged")
    async def items(offset: int = Query(0, ge=0), limit: int = Query(24, ge=1, le=limits.page_max),
                    filter: list[str] = Query(default=[], description="attr=value or column=value")):
        _ready()
        total, rows = await _run(backend.catalogue, offset, limit, list(filter))
        return {"total": total, "offset": offset, "limit": limit, "items": [_with_url(r) for r in rows]}

    @app.get("/items/{item_id:path}/image", summary="a gallery item's image", response_class=FileResponse)
    async def item_image(item_id: str):
        _ready()
        path = backend.image_path(item_id)
        if not path.is_file():
            raise GalleryError(f"{path}: image of item {item_id!r} is missing on disk; restore the catalogue folder")
        return FileResponse(path, headers={"cache-control": "public, max-age=3600"})

    @app.post("/search", summary="search by an uploaded image or a gallery item, with manipulations",
              openapi_extra=SEARCH_BODY_DOC)
    async def search(request: Request):
        _ready()
        t0 = time.perf_counter()
        query, sets, filters, k = await _parse_search(request, limits)
        schema = backend.schema
        try:
            parsed = SearchRequest.parse(sets, schema, source="sets")
        except RequestError as e:
            raise ClientError(422, str(e), valid=e.valid) from None
        if isinstance(query, bytes):
            rgb = await _run(_decode, query, limits)
            answer = await _run(backend.search, rgb, parsed, filters, k)
        else:
            answer = await _run(backend.search, query, parsed, filters, k)
        return _answer_json(answer, sets, filters, time.perf_counter() - t0)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    return app


def _error_response(e: FSNError) -> JSONResponse:
    status = {ImageError: 400, SchemaError: 422, UsageError: 422, RequestError: 422, GalleryError: 404}.get(type(e), 500)
    if status == 500:
        log.error("server-side error: %s", one_line(str(e)))
    return JSONResponse({"error": one_line(str(e))}, status_code=status)


def _decode(data: bytes, limits: Limits) -> np.ndarray:
    """Upload bytes -> RGB, refusing non-images (400) and oversized images (413)."""
    try:
        rgb = decode_image(data, source="upload")
    except ImageError as e:
        if "MP limit" in str(e):
            raise ClientError(413, str(e)) from None
        raise ClientError(400, f"{e}; send a JPEG or PNG photo") from None
    h, w = rgb.shape[:2]
    if max(h, w) > limits.max_side or h * w > limits.max_pixels:
        raise ClientError(413, f"upload: image is {w}x{h} pixels, over the limit of {limits.max_side} px a side and "
                               f"{limits.max_pixels // 1_000_000} MP; resize it first")
    return rgb


def _str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientError(400, f"field {field!r}: expected a list of strings like [\"color=red\"], got {value!r}")
    return list(value)


async def _parse_search(request: Request, limits: Limits) -> tuple[bytes | str, list[str], list[str], int]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    image: bytes | None = None
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=1, max_fields=64)
        except _BodyTooLarge:
            raise
        except Exception as e:  # python-multipart / starlette parse errors
            raise ClientError(400, f"malformed form body ({one_line(str(e)) or type(e).__name__}); send "
                                   "multipart/form-data with an 'image' file or an 'item_id' field") from None
        up = form.get("image")
        if isinstance(up, UploadFile):
            image = await up.read()
            if not image:
                raise ClientError(400, "field 'image': the uploaded file is empty; send a JPEG or PNG photo")
        elif isinstance(up, str) and up:
            raise ClientError(400, "field 'image': expected a file upload (multipart/form-data), got text")
        item_id = form.get("item_id") or None
        sets = [s for s in form.getlist("sets") if isinstance(s, str) and s.strip()]
        filters = [s for s in form.getlist("filters") if isinstance(s, str) and s.strip()]
        k_raw: Any = form.get("k", limits.k_default)
        if k_raw == "":
            k_raw = limits.k_default
    elif ctype in ("application/json", ""):
        body = await request.body()
        try:
            payload = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise ClientError(400, "malformed JSON: the body is not UTF-8 text") from None
        except json.JSONDecodeError as e:
            raise ClientError(400, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}; send e.g. "
                                   "{\"item_id\": \"...\", \"sets\": [\"color=red\"]}") from None
        except RecursionError:
            raise ClientError(400, "malformed JSON: nested too deeply; send a flat object like "
                                   "{\"item_id\": \"...\", \"sets\": [\"color=red\"]}") from None
        if not isinstance(payload, dict):
            raise ClientError(400, "JSON body must be an object like {\"item_id\": \"...\", \"sets\": [\"color=red\"]}")
        unknown = sorted(set(payload) - {"item_id", "sets", "filters", "k"})
        if unknown:
            raise ClientError(400, f"JSON field(s) {', '.join(unknown)} are not known; valid: item_id, sets, filters, k")
        item_id = payload.get("item_id")
        if item_id is not None and not isinstance(item_id, str):
            raise ClientError(400, f"field 'item_id': expected a string, got {item_id!r}")
        sets = _str_list(payload.get("sets"), "sets")
        filters = _str_list(payload.get("filters"), "filters")
        k_raw = payload.get("k")
        if k_raw is None:  # absent or null: the default
            k_raw = limits.k_default
    else:
        raise ClientError(415, f"Content-Type {ctype!r} is not accepted; send multipart/form-data (image upload) "
                               "or application/json (item_id)")
    if (image is None) == (item_id is None):
        raise ClientError(400, "give exactly one query: an 'image' file upload or an 'item_id'")
    try:
        k = check_k(k_raw, limits.k_max)
    except UsageError as e:
        raise ClientError(422, str(e)) from None
    return (image if image is not None else item_id), sets, filters, k


def image_url(item_id: str) -> str:
    """The service URL of a gallery item's image."""
    return f"/items/{quote(item_id, safe='')}/image"


def _with_url(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "image_url": image_url(r["id"])}


def _answer_json(a: Answer, sets: Sequence[str], filters: Sequence[str], took_s: float) -> dict[str, Any]:
    q = a.query.to_dict()
    if a.query.item_id is not None:
        q["image_url"] = image_url(a.query.item_id)
    return {"query": q, "sets": list(sets), "filters": list(filters), "method": a.method, "exact": a.exact,
            "candidates": a.candidates, "took_ms": round(took_s * 1000, 2),
            "results": [_with_url(r) for r in a.results]}
