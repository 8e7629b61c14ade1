"""fsn serve GALLERY [--host 127.0.0.1] [--port 8080] [--backend auto] [--bundle BUNDLE]: the local HTTP service
and kiosk page (GET /). /health answers 503 until the model is loaded and warmed up."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fashionsearchnet.app import backend_options
from fashionsearchnet.app.batch_policy import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gallery", help="gallery folder written by 'fsn index'")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "ort-cpu", "ort-cuda", "ort-trt", "trt", "openvino"),
                   help="feature extraction backend for uploaded photos (default auto: trt, ort-cuda, openvino, ort-cpu)")
    backend_options.add_arguments(p)
    p.add_argument("--bundle", default=None, help="bundle folder (default: the one the gallery was built with)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (default 0 = all cores)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body in MB (default 10)")
    p.add_argument("--max-side", type=int, default=8192, help="largest image width/height in pixels (default 8192)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="decode/search calls running at once (the model has its own worker); others wait off the "
                        "event loop (default 2)")
    p.add_argument("--max-batch", default=str(DEFAULT_MAX_BATCH), metavar="N",
                   help=f"most uploads run through the model together (default {DEFAULT_MAX_BATCH}; 1 = no batching)")
    p.add_argument("--max-wait-ms", default=str(DEFAULT_MAX_WAIT_MS), metavar="MS",
                   help="longest an upload waits for others to join its batch, only while more are arriving "
                        f"(default {DEFAULT_MAX_WAIT_MS:g}; a lone upload does not wait)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept requests whose Host header names NAME (repeatable; '*' accepts any). Default: "
                        "the bound address, localhost, 127.0.0.1 and ::1 (and this machine's names when bound to all "
                        "addresses): a guard against DNS rebinding")
    p.add_argument("--log-requests", action="store_true", help="log every request (uvicorn access log)")


def allowed_hosts(bound: str, extra: list[str]) -> tuple[str, ...]:
    """Host header names the service answers: the bound address, loopback names, ``extra``; bound to all
    addresses (0.0.0.0 / ::), also this machine's host name and its addresses."""
    import socket

    hosts = {bound, "localhost", "127.0.0.1", "::1", *extra}
    if bound in ("0.0.0.0", "::", ""):
        name = socket.gethostname()
        hosts |= {name, socket.getfqdn()}
        try:
            hosts |= set(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    return tuple(sorted(h for h in hosts if h))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.app.server import Limits, create_app
    from fashionsearchnet.app.batch_policy import parse_policy
    from fashionsearchnet.errors import GalleryError, UsageError
    from fashionsearchnet.runtime.backends.ort import check_threads

    gallery = Path(args.gallery)
    if not (gallery / "CURRENT").is_file():
        raise GalleryError(f"{gallery}: not a gallery folder (no CURRENT); build one with "
                           f"`fsn index BUNDLE DATA --out {gallery}`")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: give 0..65535")
    if args.concurrency < 1 or not 0 < args.max_upload_mb <= 4096 or args.max_side < 32:
        raise UsageError(f"--concurrency must be >= 1, --max-upload-mb > 0 and at most 4096 (finite), and --max-side "
                         f">= 32 (got {args.concurrency}, {args.max_upload_mb}, {args.max_side})")
    check_threads(args.threads)  # before the model loads in the background
    batching = parse_policy(args.max_batch, args.max_wait_ms)
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_side=args.max_side,
                    concurrency=args.concurrency, allowed_hosts=allowed_hosts(args.host, args.allow_host))
    backend = GalleryService(gallery, bundle=args.bundle, backend=backend_options.backend_choice(args),
                             threads=args.threads)
    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(backend, limits, on_load_failed=stop, batching=batching)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", access_log=args.log_requests,
                            timeout_keep_alive=5, limit_concurrency=256, h11_max_incomplete_event_size=64 * 1024)
    server = uvicorn.Server(config)
    log.info("serving %s on http://%s:%d/ (kiosk page at /, OpenAPI spec at /openapi.json); /health is 503 until the model is "
             "warmed up", gallery, args.host, args.port)
    server.run()
    state = app.state.fsn
    backend.close()
    if state.status == "failed":
        log.error("the service could not load: %s", state.error)
        return 2
    return 0
