"""``create_app(backend)``: the FastAPI app (middleware, error mapping, routes) around a SearchService."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Callable

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fashionsearchnet.app.service_api import SearchService
from fashionsearchnet.app.server import errors
from fashionsearchnet.app.batch_policy import BatchPolicy
from fashionsearchnet.app.server.batcher import MicroBatcher
from fashionsearchnet.app.server.limits import Limits
from fashionsearchnet.app.server.middleware import BodyLimit, HostAllowList
from fashionsearchnet.app.server.routes import STATIC_DIR, build_router
from fashionsearchnet.app.server.state import ServiceState
from fashionsearchnet.errors import FSNError, one_line

log = logging.getLogger(__name__)


def create_app(backend: SearchService, limits: Limits | None = None, load_in_background: bool = True,
               on_load_failed: Callable[[str], None] | None = None, batching: BatchPolicy | None = None) -> FastAPI:
    """The FastAPI app around ``backend``; ``backend.load()`` runs in a thread at start-up (/health 503 until done).

    ``on_load_failed(message)`` is called when loading raises (``fsn serve`` stops the server and exits 2).
    ``batching``: how uploads are grouped for the model (``--max-batch``, ``--max-wait-ms``; batcher.py)."""
    limits = limits or Limits()
    state = ServiceState()
    state.batcher = MicroBatcher(backend.extract_batch, batching or BatchPolicy())

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
        state.batcher = MicroBatcher(backend.extract_batch, state.batcher.policy)  # fresh for each start
        state.limiter = anyio.CapacityLimiter(limits.concurrency)
        if load_in_background:
            threading.Thread(target=_load, name="fsn-load", daemon=True).start()
        else:
            await anyio.to_thread.run_sync(_load)
        yield
        state.batcher.close()

    # /docs and /redoc are off: FastAPI serves them with scripts from a CDN, and kiosks are offline.
    app = FastAPI(title="FashionSearchNet Edge kiosk service", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Attribute- and region-manipulable fashion search (Ak et al., CVPR 2018) on a kiosk. "
                              "Every error answer is {\"error\": one line, ...}.")
    app.state.fsn = state
    app.state.backend = backend
    errors.install(app, limits.max_upload_bytes)
    app.include_router(build_router(backend, state, limits))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    if limits.allowed_hosts is not None:
        app.add_middleware(HostAllowList, hosts=limits.allowed_hosts)  # outermost: checked first
    return app
