"""The service's routes: health, attributes, the paged catalogue, item images and /search."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from fashionsearchnet.app.service_api import Answer, SearchService, schema_description
from fashionsearchnet.app.server.batcher import ShuttingDown
from fashionsearchnet.app.server.errors import ClientError
from fashionsearchnet.app.server.limits import Limits
from fashionsearchnet.app.server.models import (
    AttributesResponse,
    Health,
    ItemsPage,
    SearchResponse,
    error_responses,
    search_body_doc,
)
from fashionsearchnet.app.server.parsing import decode_upload, parse_search
from fashionsearchnet.app.server.state import ServiceState
from fashionsearchnet.errors import RequestError
from fashionsearchnet.search.compose import require_description
from fashionsearchnet.search.request import Request as SearchRequest

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def image_url(item_id: str) -> str:
    """The service URL of a gallery item's image."""
    return f"/items/{quote(item_id, safe='')}/image"


def build_router(backend: SearchService, state: ServiceState, limits: Limits) -> APIRouter:
    router = APIRouter()

    def ready() -> None:
        if state.status != "ready":
            msg = "the model is still loading; retry in a moment" if state.status == "loading" else \
                f"the service failed to load: {state.error}"
            raise ClientError(503, msg, state=state.status)

    async def run(fn, *args):
        """Decoding and search work in the thread pool bounded by ``limits.concurrency`` (the event loop stays
        free). The model runs for uploads go through the micro-batcher (``search_upload``)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=state.limiter)

    def prepare_upload(data: bytes):
        return backend.prepare(decode_upload(data, limits))

    async def search_upload(data: bytes, parsed: SearchRequest, filters: list[str], k: int) -> Answer:
        """Decode + prepare in a pool thread, the model in a batch with other uploads (batcher.py), then the
        search back in a pool thread: the model worker never waits on a search."""
        batcher = state.batcher
        with batcher.announced() as coming:
            prepared = await run(prepare_upload, data)
            try:
                extracted = await batcher.submit(prepared, coming)
            except ShuttingDown as e:
                raise ClientError(503, str(e)) from None
        return await run(backend.search_extracted, extracted, parsed, filters, k)

    @router.get("/health", summary="200 once the model is loaded and warmed up, 503 before",
                response_model=Health, responses=error_responses(503))
    async def health():
        body: dict[str, Any] = {"status": state.status}
        if state.status == "ready":
            body.update(backend.describe())
            if state.batcher is not None:
                body["batching"] = state.batcher.stats()
            body["loaded_s"] = round(state.loaded_s or 0.0, 2)
            return body
        if state.error:
            body["error"] = state.error
        return JSONResponse(Health.model_validate(body).model_dump(exclude_none=True), status_code=503)

    @router.get("/attributes", summary="schema: attributes and values, regions and their askable attributes",
                response_model=AttributesResponse, responses=error_responses(503))
    async def attributes():
        ready()
        return schema_description(backend.schema)

    @router.get("/items", summary="the catalogue (searchable gallery items), paged", response_model=ItemsPage,
                responses=error_responses(422, 503))
    async def items(offset: int = Query(0, ge=0), limit: int = Query(24, ge=1, le=limits.page_max),
                    filter: list[str] = Query(default=[], description="attr=value or column=value")):
        ready()
        total, rows = await run(backend.catalogue, offset, limit, list(filter))
        return {"total": total, "offset": offset, "limit": limit, "items": [with_url(r) for r in rows]}

    @router.get("/items/{item_id:path}/image", summary="a gallery item's image", response_class=FileResponse,
                responses={200: {"content": {"image/*": {}}, "description": "the image file"},
                           **error_responses(404, 422, 500, 503)})
    async def item_image(item_id: str):
        ready()
        path = await run(backend.image_path, item_id)  # checked: inside its catalogue, present (else 500)
        return FileResponse(path, headers={"cache-control": "public, max-age=3600"})

    @router.post("/search", summary="search by an uploaded image or a gallery item, with manipulations, or by "
                                    "described values alone (sets without image or item_id)",
                 response_model=SearchResponse, openapi_extra=search_body_doc(limits.k_max, limits.k_default),
                 responses=error_responses(400, 404, 413, 415, 422, 500, 503))
    async def search(request: Request):
        ready()
        t0 = time.perf_counter()
        q = await parse_search(request, limits)
        try:
            parsed = SearchRequest.parse(q.sets, backend.schema, source="sets")  # parsed once, here
            if q.query is None:  # no image, no item_id: a query composed from the sets (issue 24)
                require_description(parsed, backend.schema, source="sets")
        except RequestError as e:
            raise ClientError(422, str(e), valid=e.valid) from None
        if isinstance(q.query, bytes):
            answer = await search_upload(q.query, parsed, q.filters, q.k)
        else:
            answer = await run(backend.search, q.query, parsed, q.filters, q.k)
        return answer_json(answer, q.sets, q.filters, time.perf_counter() - t0)

    @router.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    return router


def with_url(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "image_url": image_url(r["id"])}


def answer_json(a: Answer, sets: Sequence[str], filters: Sequence[str], took_s: float) -> dict[str, Any]:
    q = a.query.to_dict()
    if a.query.item_id is not None:
        q["image_url"] = image_url(a.query.item_id)
    return {"query": q, "sets": list(sets), "filters": list(filters), "method": a.method, "exact": a.exact,
            "candidates": a.candidates, "took_ms": round(took_s * 1000, 2),
            "results": [with_url(r) for r in a.results]}
