"""The service's requests and responses as Pydantic models: /openapi.json is generated from these, and the
responses are validated against them (so the schema cannot drift from what the routes send)."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class ErrorBody(BaseModel):
    """Every error answer: one line saying what is wrong and how to fix it, plus route-specific fields."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"error": "sets: value 'magenta' of attribute 'color' is not known; valid: red, blue",
         "valid": {"values": ["red", "blue"]}}]})
    error: str = Field(description="one line: what is wrong and how to fix it")
    valid: Optional[dict[str, list[str]]] = Field(None, description="422 on sets: the valid attributes, values or regions")
    limit_bytes: Optional[int] = Field(None, description="413: the body limit in bytes")
    state: Optional[str] = Field(None, description="503: loading or failed")
    detail: Optional[list[dict[str, Any]]] = Field(None, description="422 on query parameters: each problem")


# ---- requests ---------------------------------------------------------------------------------------------
class SearchJSON(BaseModel):
    """``POST /search`` with ``application/json``: a gallery item as the query, or only ``sets`` (a query
    composed from the described values)."""

    model_config = ConfigDict(extra="forbid")
    item_id: Optional[StrictStr] = Field(None, description="gallery item id (image path) or a unique item_id")
    sets: Union[list[StrictStr], StrictStr, None] = Field(
        None, description="manipulations: attr=value or region:attr=value", examples=[["color=red", "sleeve:color=blue"]])
    filters: Union[list[StrictStr], StrictStr, None] = Field(
        None, description="attr=value or metadata_column=value; results must match all")
    k: Any = Field(None, description="number of results (a whole number; null = the default)")


class SearchForm(BaseModel):
    """``POST /search`` with ``multipart/form-data``: an uploaded photo (or an item_id, or only ``sets``) as the
    query."""

    image: Optional[bytes] = Field(None, description="query photo (JPEG, PNG, WEBP, BMP or TIFF)",
                                   json_schema_extra={"format": "binary"})
    item_id: Optional[str] = Field(None, description="or a gallery item id as the query")
    sets: list[str] = Field(default_factory=list, description="manipulations (repeat the field)")
    filters: list[str] = Field(default_factory=list, description="filters (repeat the field)")
    k: Optional[int] = None


# ---- responses --------------------------------------------------------------------------------------------
class Predicted(BaseModel):
    value: str
    confidence: float


class BoxOut(BaseModel):
    name: str
    kind: Literal["attribute", "region"]
    box: list[float] = Field(description="[x0, y0, x1, y1] in image pixels (x1, y1 exclusive)")


class QueryOut(BaseModel):
    item_id: Optional[str] = Field(description="the query's gallery id, null for an upload or a described query")
    width: int
    height: int
    predicted: dict[str, Predicted]
    boxes: list[BoxOut]
    image_url: Optional[str] = None


class ItemOut(BaseModel):
    id: str = Field(description="the item's image path relative to its catalogue")
    item_id: Optional[str]
    predicted: dict[str, Predicted]
    metadata: dict[str, str]
    image_url: str


class ResultOut(ItemOut):
    distance: float


class SearchResponse(BaseModel):
    query: QueryOut
    sets: list[str]
    filters: list[str]
    method: str
    exact: bool
    candidates: int = Field(description="items the search could return (alive, matching the filters)")
    took_ms: float
    results: list[ResultOut]


class ItemsPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ItemOut]


class AttributeOut(BaseModel):
    name: str
    values: list[str]


class RegionOut(BaseModel):
    name: str
    attributes: list[str]
    values: dict[str, list[str]]
    primary: bool


class AttributesResponse(BaseModel):
    attributes: list[AttributeOut]
    regions: list[RegionOut]
    primary_region: Optional[str]


class Health(BaseModel):
    """``GET /health``: 200 ``ready`` (with what is served), 503 ``loading`` or ``failed``."""

    model_config = ConfigDict(extra="allow")
    status: Literal["loading", "ready", "failed"]
    error: Optional[str] = None
    gallery: Optional[str] = None
    items: Optional[int] = None
    generation: Optional[int] = Field(None, description="the gallery generation being served (follows `fsn update`)")
    method: Optional[str] = None
    backend: Optional[str] = None
    bundle: Optional[str] = None
    loaded_s: Optional[float] = None
    batching: Optional[dict[str, Any]] = Field(None, description="upload micro-batching: max_batch, max_wait_ms and "
                                                "counts so far (batches, items, largest_batch)")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries with the error body for ``codes``."""
    what = {400: "not an image, malformed body or Host not allowed", 404: "unknown item id",
            413: "upload or image too large", 415: "Content-Type not accepted",
            422: "unknown attribute/value/region (lists the valid ones), bad k or bad query parameter",
            500: "server-side fault (a catalogue image missing on disk), logged", 503: "model still loading or load failed"}
    return {c: {"model": ErrorBody, "description": what[c]} for c in codes}


def search_body_doc(k_max: int, k_default: int) -> dict[str, Any]:
    """The /search request body for OpenAPI, from :class:`SearchJSON` and :class:`SearchForm` with the service's
    limits filled in."""
    k = {"type": "integer", "minimum": 1, "maximum": k_max, "default": k_default,
         "description": f"number of results, 1..{k_max} (default {k_default})"}
    js = SearchJSON.model_json_schema()
    js["properties"]["k"] = {**k, "anyOf": [{"type": "integer"}, {"type": "null"}]}
    js["properties"]["k"].pop("type")
    form = SearchForm.model_json_schema()
    form["properties"]["k"] = k
    form["properties"]["image"] = {"type": "string", "format": "binary",
                                   "description": form["properties"]["image"].get("description", "")}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form},
                                                          "application/json": {"schema": js}}}}
