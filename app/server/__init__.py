"""The local HTTP service and kiosk page (FastAPI on uvicorn). No torch.

``create_app(backend)`` builds the ASGI app around a :class:`~fashionsearchnet.app.service_api.SearchService`:

- ``GET /``: the kiosk page (``app/static/``); ``GET /static/...``: its script and style.
- ``GET /health``: 503 ``{"status": "loading"}`` until the model is loaded and warmed up, then 200 with the
  gallery generation served (it follows ``fsn update`` without a restart).
- ``GET /attributes``: schema, values, regions and their askable attributes.
- ``GET /items?offset=&limit=&filter=attr=value``: the catalogue, paged.
- ``GET /items/{id}/image``: a gallery item's image file.
- ``POST /search``: multipart (``image`` file, or ``item_id``; ``sets``, ``filters`` repeated; ``k``) or JSON
  (``{"item_id", "sets", "filters", "k"}``) -> the query's predicted attributes and attention boxes (image
  pixels) and the ranked results.
- ``GET /openapi.json``: the OpenAPI spec, generated from the Pydantic models in ``models.py`` (no /docs page:
  FastAPI's pulls scripts from a CDN).

Client mistakes never give a 500: too large a body -> 413, not an image -> 400, malformed JSON -> 400,
unknown attribute/value/region -> 422 with the valid choices, unknown item -> 404, a Host header not
allowed -> 400. Decoding and search run in a thread pool bounded by ``concurrency``; uploads' model runs are
grouped into batches by one model worker (``batcher``: ``--max-batch``, ``--max-wait-ms``); the event loop keeps
serving other clients meanwhile.

Modules: ``limits`` (what a client may send), ``errors`` (exceptions -> status + error body), ``middleware``
(Host allow-list, body limit), ``models`` (Pydantic requests/responses), ``parsing`` (/search body, upload
decoding), ``batcher`` (micro-batching of uploads for the model), ``routes``, ``state`` and ``app`` (the factory).
"""
from fashionsearchnet.app.server.app import create_app
from fashionsearchnet.app.server.errors import ClientError
from fashionsearchnet.app.server.limits import Limits
from fashionsearchnet.app.server.parsing import decode_upload
from fashionsearchnet.app.server.routes import image_url

_decode = decode_upload  # the name benchmarks/perf/bench_serve.py uses

__all__ = ["ClientError", "Limits", "create_app", "decode_upload", "image_url"]
