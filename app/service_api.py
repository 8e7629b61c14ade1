"""The kiosk service's API types: the answer shown to the kiosk page (:class:`Answer`, :class:`QueryInfo`,
:class:`Box`), the :class:`SearchService` protocol the HTTP layer calls, and pure request helpers shared by the
service and its implementations. No torch, no FastAPI here.

:class:`SearchService` is implemented by :class:`fashionsearchnet.app.gallery_service.GalleryService`
(a published gallery + its bundle, on the gallery engineer's ``Gallery.search``) and by a fake in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import SchemaError, UsageError
from fashionsearchnet.search.request import Request
from fashionsearchnet.whole_numbers import whole_number


@dataclass(frozen=True)
class Box:
    """An attention box in image pixels: ``[x0, y0, x1, y1]`` (x1/y1 exclusive), for an attribute or a region."""

    name: str
    kind: str  # "attribute" | "region"
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "box": [round(float(v), 1) for v in self.box]}


@dataclass
class QueryInfo:
    """What the service shows about the query: its predicted attributes and attention boxes."""

    width: int
    height: int
    predicted: dict[str, dict[str, Any]]  # attr -> {"value": str, "confidence": float}
    boxes: list[Box] = field(default_factory=list)
    item_id: str | None = None  # set when the query is a gallery item

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "width": self.width, "height": self.height, "predicted": self.predicted,
                "boxes": [b.to_dict() for b in self.boxes]}


@dataclass
class Answer:
    """One search: the query's information and the ranked results (each ``{"id", "item_id", "distance",
    "predicted", "metadata"}``)."""

    query: QueryInfo
    results: list[dict[str, Any]]
    method: str
    exact: bool
    candidates: int


@dataclass
class Prepared:
    """An upload ready for the model: its preprocessed input and the photo's size in pixels."""

    x: Any  # (3, S, S) float32 for the gallery service; opaque to the HTTP layer
    width: int
    height: int


@dataclass
class Extracted:
    """The model's output for one upload (``features``: a one-image extractor ``Features``)."""

    features: Any
    width: int
    height: int


class SearchService(Protocol):
    """A loaded model + gallery the service shares between concurrent requests (implementations lock)."""

    schema: Schema

    def load(self) -> None:
        """Load the model and gallery and warm them up (blocking; the service calls it once, off the event loop)."""

    def describe(self) -> dict[str, Any]:
        """Facts for /health: gallery path, size, method, backend."""

    def catalogue(self, offset: int, limit: int, filters: Sequence[str] = ()) -> tuple[int, list[dict[str, Any]]]:
        """(total, items[offset:offset+limit]) of the searchable items, each ``{"id", "item_id", "predicted",
        "metadata"}``."""

    def image_path(self, item_id: str) -> Path:
        """The image file of a gallery item (GalleryError if unknown)."""

    def search(self, query: bytes | str | None, request: Request, filters: Sequence[str], k: int) -> Answer:
        """Search by a decoded RGB image or a gallery item id with a parsed request (``Request.parse``); None:
        a query composed from the request's values alone (an answer whose QueryInfo is 0 x 0 without boxes)."""

    # the three steps of an upload search, for the service's micro-batcher (app/server/batcher.py)
    def prepare(self, image: Any) -> Prepared:
        """Decoded RGB -> model input (any thread, no model run)."""

    def extract_batch(self, prepared: Sequence[Prepared]) -> list[Extracted]:
        """One model run for a batch of uploads, one result per upload in order (the model worker only)."""

    def search_extracted(self, query: Extracted, request: Request, filters: Sequence[str], k: int) -> Answer:
        """ANN search and scoring for one extracted upload (the request's thread, not the model worker)."""


# ---- pure helpers ---------------------------------------------------------------------------------------
def schema_description(schema: Schema) -> dict[str, Any]:
    """The /attributes body: attributes with values, regions with askable attributes, the primary region."""
    return {
        "attributes": [{"name": a.name, "values": list(a.values)} for a in schema.attributes],
        "regions": [{"name": r.name, "attributes": list(r.attributes),
                     "values": {a: list(schema.attribute(a).values) for a in r.attributes},
                     "primary": r.primary} for r in schema.regions],
        "primary_region": schema.primary_region,
    }


def check_k(k: Any, k_max: int) -> int:
    """``k`` as an int in 1..k_max (UsageError otherwise): an int, a whole float or a digit string; not a bool."""
    kk = whole_number(k, strings=True)
    if kk is None:
        raise UsageError(f"k: {k!r} is not a whole number; give 1..{k_max}")
    if not 1 <= kk <= k_max:
        raise UsageError(f"k: {k!r} is out of range; give 1..{k_max}")
    return kk


__all__ = ["Answer", "Box", "Extracted", "Prepared", "QueryInfo", "SearchService", "check_k",
           "schema_description", "SchemaError"]
