"""ASGI middleware of the service: the Host header allow-list (against DNS rebinding) and the body-size limit."""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from fashionsearchnet.app.server.errors import BodyTooLarge, error_body, too_large_body

log = logging.getLogger(__name__)


async def send_json(send: Any, status: int, body: dict) -> None:
    """Answer directly from middleware (before the app runs) and close the connection."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def host_name(header: str) -> str:
    """``Host`` header value -> lower-case host without the port (``[::1]:8080`` -> ``::1``)."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class HostAllowList:
    """Refuse requests whose ``Host`` header names none of ``hosts`` (400): a web page on another origin that
    re-binds its DNS name to this kiosk's address cannot then drive the service from a shopper's browser.
    ``"*"`` in ``hosts`` accepts any."""

    def __init__(self, app: Any, hosts: Iterable[str]):
        self.app = app
        self.hosts = {host_name(h) for h in hosts}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "*" in self.hosts:
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if host_name(raw) not in self.hosts:
            log.warning("refused a request for Host %r (allowed: %s)", raw[:100], ", ".join(sorted(self.hosts)))
            await send_json(send, 400, error_body(
                f"Host {raw[:100]!r} is not served here; use one of {', '.join(sorted(self.hosts))} "
                "(the operator adds names with `fsn serve --allow-host NAME`)"))
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (by Content-Length up front, or while streaming a
    chunked body)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0:
                await send_json(send, 400, error_body(f"Content-Length {length.decode(errors='replace')!r} is not "
                                                      "a byte count; send a valid header"))
                return
            if n > self.max_bytes:
                await send_json(send, 413, too_large_body(self.max_bytes, n))
                return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)
