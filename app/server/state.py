"""The service's loading state, shared by the loader thread and the routes."""
from __future__ import annotations

from typing import Any

import anyio


class ServiceState:
    def __init__(self) -> None:
        self.status = "loading"  # loading | ready | failed
        self.error: str | None = None
        self.loaded_s: float | None = None
        self.limiter: anyio.CapacityLimiter | None = None
        self.batcher: Any = None  # batcher.MicroBatcher of upload model runs (set by create_app)
