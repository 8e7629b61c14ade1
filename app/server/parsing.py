"""A /search request -> one :class:`SearchQuery` (JSON through :class:`~.models.SearchJSON`, or a multipart
form), and an uploaded photo -> RGB within the limits. The manipulation syntax itself is parsed once by the
search core (``fashionsearchnet.search.request.Request.parse``, in routes.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from fashionsearchnet.app.service_api import check_k
from fashionsearchnet.app.server.errors import BodyTooLarge, ClientError
from fashionsearchnet.app.server.limits import Limits
from fashionsearchnet.app.server.models import SearchJSON
from fashionsearchnet.data.preprocess import decode_image
from fashionsearchnet.errors import ImageError, ImageTooLargeError, UsageError, one_line

EXAMPLE = "{\"item_id\": \"...\", \"sets\": [\"color=red\"]}"


@dataclass
class SearchQuery:
    """One parsed search: the query (encoded image bytes, an item id, or None: composed from ``sets`` alone),
    manipulations, filters and k."""

    query: bytes | str | None
    sets: list[str]
    filters: list[str]
    k: int


async def parse_search(request: Request, limits: Limits) -> SearchQuery:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        image, item_id, sets, filters, k_raw = await _from_form(request, limits)
    elif ctype in ("application/json", ""):
        image, item_id, sets, filters, k_raw = None, *(await _from_json(request, limits))
    else:
        raise ClientError(415, f"Content-Type {ctype!r} is not accepted; send multipart/form-data (image upload) "
                               "or application/json (item_id)")
    if image is not None and item_id is not None:
        raise ClientError(400, "give one query: an 'image' file upload or an 'item_id', not both (or neither, "
                               "with 'sets' describing the item)")
    # neither: a query composed from 'sets' alone (routes.py refuses it, 422, when 'sets' is empty)
    try:
        k = check_k(k_raw, limits.k_max)
    except UsageError as e:
        raise ClientError(422, str(e)) from None
    return SearchQuery(image if image is not None else item_id, sets, filters, k)  # None: composed


async def _from_form(request: Request, limits: Limits) -> tuple[bytes | None, str | None, list[str], list[str], Any]:
    try:
        form = await request.form(max_files=1, max_fields=64)
    except (BodyTooLarge, ClientDisconnect):
        raise
    except Exception as e:  # python-multipart / starlette parse errors
        raise ClientError(400, f"malformed form body ({one_line(str(e)) or type(e).__name__}); send "
                               "multipart/form-data with an 'image' file or an 'item_id' field") from None
    image: bytes | None = None
    up = form.get("image")
    if isinstance(up, UploadFile):
        image = await up.read()
        if not image:
            raise ClientError(400, "field 'image': the uploaded file is empty; send a JPEG or PNG photo")
    elif isinstance(up, str) and up:
        raise ClientError(400, "field 'image': expected a file upload (multipart/form-data), got text")
    item_id = form.get("item_id") or None
    if item_id is not None and not isinstance(item_id, str):
        raise ClientError(400, "field 'item_id': expected text, got a file")
    sets = [s for s in form.getlist("sets") if isinstance(s, str) and s.strip()]
    filters = [s for s in form.getlist("filters") if isinstance(s, str) and s.strip()]
    k_raw: Any = form.get("k", limits.k_default)
    if k_raw == "":
        k_raw = limits.k_default
    return image, item_id, sets, filters, k_raw


async def _from_json(request: Request, limits: Limits) -> tuple[str | None, list[str], list[str], Any]:
    body = await request.body()
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ClientError(400, "malformed JSON: the body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ClientError(400, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}; send e.g. "
                               f"{EXAMPLE}") from None
    except RecursionError:
        raise ClientError(400, f"malformed JSON: nested too deeply; send a flat object like {EXAMPLE}") from None
    if not isinstance(payload, dict):
        raise ClientError(400, f"JSON body must be an object like {EXAMPLE}")
    unknown = sorted(set(payload) - set(SearchJSON.model_fields))
    if unknown:
        raise ClientError(400, f"JSON field(s) {', '.join(unknown)} are not known; valid: "
                               f"{', '.join(SearchJSON.model_fields)}")
    try:
        m = SearchJSON.model_validate(payload)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "body"
        want = "a string" if field == "item_id" else "a list of strings like [\"color=red\"]"
        raise ClientError(400, f"field {field!r}: expected {want}, got {payload.get(field)!r:.80}") from None
    k_raw = limits.k_default if m.k is None else m.k  # absent or null: the default
    return m.item_id, _as_list(m.sets), _as_list(m.filters), k_raw


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def decode_upload(data: bytes, limits: Limits) -> np.ndarray:
    """Upload bytes -> RGB, refusing non-images (400) and oversized images (413) — the size is read from the
    header before anything is decoded (data/preprocess.py)."""
    try:
        rgb = decode_image(data, source="upload", max_side=limits.max_side, max_pixels=limits.max_pixels)
    except ImageTooLargeError as e:
        raise ClientError(413, str(e)) from None
    except ImageError as e:
        raise ClientError(400, f"{e}; send a JPEG or PNG photo") from None
    h, w = rgb.shape[:2]
    if max(h, w) > limits.max_side or h * w > limits.max_pixels:  # a header that understated the size
        raise ClientError(413, f"upload: image is {w}x{h} pixels, over the limit of {limits.max_side} px a side and "
                               f"{limits.max_pixels // 1_000_000} MP; resize it first")
    return rgb
