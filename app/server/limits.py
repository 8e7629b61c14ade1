"""What a client may send the service, in one place (``fsn serve`` flags fill it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what a client may send."""

    max_upload_bytes: int = 10 * 1024 * 1024  # whole request body
    max_side: int = 8192  # decoded image width or height
    max_pixels: int = 40_000_000
    k_max: int = 100
    k_default: int = 12
    page_max: int = 200
    concurrency: int = 2  # decode/search calls running at once (the rest wait, off the event loop; the model has its own worker)
    # Host header values accepted (DNS-rebinding guard); None accepts any (in-process test clients)
    allowed_hosts: tuple[str, ...] | None = None
