"""A search request and the one parser of its text form (``attr=value`` / ``region:attr=value``).

The CLI (``--set``), the HTTP service (``sets``) and the Python API all parse with :meth:`Request.parse`; a
mistake raises one :class:`~fashionsearchnet.errors.RequestError` naming the entry and listing the valid
choices at fault (the service returns them as ``valid``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import RequestError, SchemaError, UsageError


def split_entry(raw: str, source: str = "--set") -> tuple[str | None, str, str]:
    """``"sleeve:color=red"`` -> ("sleeve", "color", "red"); ``"color=red"`` -> (None, "color", "red")."""
    text = str(raw).strip()
    if "=" not in text:
        raise RequestError(f"{source} {raw!r}: expected attr=value or region:attr=value", str(raw), None)
    key, value = (s.strip() for s in text.split("=", 1))
    if ":" in key:
        region, attr = (s.strip() for s in key.split(":", 1))
        return region, attr, value
    return None, key, value


def entry_text(region: str | None, attr: str, value: str) -> str:
    return f"{attr}={value}" if region is None else f"{region}:{attr}={value}"


def check_entry(schema: Schema, region: str | None, attr: str, value: str, source: str = "--set") -> None:
    """Raise RequestError (with the valid choices at fault) unless the schema knows the region, attribute and value."""
    entry = entry_text(region, attr, value)
    valid: dict[str, list[str]]
    try:
        if region is not None:
            valid = {"regions": [r.name for r in schema.regions]}
            reg = schema.region(region)
            valid = {"attributes": list(reg.attributes)}
            schema.region_pair_index(region, attr)
        valid = {"attributes": list(schema.names)}
        attribute = schema.attribute(attr)
        valid = {"values": list(attribute.values)}
        attribute.index(value)
    except SchemaError as e:
        raise RequestError(f"{source} {entry!r}: {e}", entry, valid) from None


@dataclass(frozen=True)
class Request:
    """A manipulation: image-level ``set`` ((attr, value), ...) and region-level ((region, attr, value), ...)."""

    set: tuple[tuple[str, str], ...] = ()
    region: tuple[tuple[str, str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.set and not self.region

    def entries(self) -> list[tuple[str | None, str, str]]:
        """(region or None, attr, value) for every entry: image-level ones first."""
        return [(None, a, v) for a, v in self.set] + list(self.region)

    @classmethod
    def parse(cls, sets: Sequence[str] | None, schema: Schema, source: str = "--set") -> "Request":
        """Parse ``["collar=round", "sleeve:color=red"]`` and validate every name against ``schema``.

        ``source`` names the field in error messages (``--set`` on the command line, ``sets`` over HTTP)."""
        plain: list[tuple[str, str]] = []
        region: list[tuple[str, str, str]] = []
        for raw in sets or ():
            try:
                reg, attr, value = split_entry(raw, source)
            except RequestError as e:
                raise RequestError(f"{e}; valid attributes: {', '.join(schema.names)}", e.entry,
                                   {"attributes": list(schema.names)}) from None
            if reg is None:
                plain.append((attr, value))
            else:
                region.append((reg, attr, value))
        req = cls(tuple(plain), tuple(region))
        req.validate(schema, source)
        return req

    def validate(self, schema: Schema, source: str = "--set") -> None:
        """Raise RequestError for unknown names or an attribute (or region attribute) asked with two values."""
        seen: dict[tuple[str | None, str], str] = {}
        for reg, attr, value in self.entries():
            check_entry(schema, reg, attr, value, source)
            key = (reg, attr)
            if key in seen and seen[key] != value:
                name = attr if reg is None else f"{reg}:{attr}"
                raise RequestError(f"{source} {name}: asked twice ({seen[key]!r} and {value!r}); give one value",
                                   entry_text(reg, attr, value))
            seen[key] = value

    def to_strings(self) -> list[str]:
        """The inverse of ``parse``."""
        return [entry_text(r, a, v) for r, a, v in self.entries()]


def image_level(request: Request, schema: Schema) -> dict[int, int]:
    """{attribute index: value index} with region requests mapped to image level (non-region methods)."""
    out: dict[int, int] = {}
    for attr, value in list(request.set) + [(a, v) for _, a, v in request.region]:
        a, v = schema.attr_index(attr), schema.value_index(attr, value)
        if a in out and out[a] != v:
            raise UsageError(
                f"attribute {attr!r} is asked with two values ({schema.attributes[a].values[out[a]]!r} and {value!r}) "
                "and this method has no region awareness; ask one value"
            )
        out[a] = v
    return out


def candidate_substitution(request: Request, schema: Schema) -> dict[int, int]:
    """Image-level {attribute: value} for picking fsn_region candidates from a global-space index: the change
    fsn_region's global term makes (the image-level ``set`` and primary-region requests, ``set`` winning a
    conflict); a collar or sleeve request leaves the image level as it is (its garment keeps its torso)."""
    out: dict[int, int] = {}
    primary = schema.primary_region
    ordered = list(request.set) + [(a, v) for r, a, v in request.region if r == primary]
    for attr, value in ordered:
        out.setdefault(schema.attr_index(attr), schema.value_index(attr, value))
    return out
