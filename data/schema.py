"""The attribute schema: attribute order and values, and the region linkage (section 3.4).

``schema.json``::

    {"attributes": [{"name": "color", "values": ["red", "blue"]}, ...],
     "regions": {"sleeve": {"from": ["sleeve"], "attributes": ["color", "pattern"]},
                 "torso":  {"from": ["category"], "attributes": ["color"], "subtract": ["collar", "sleeve"]}}}

``from``: the attributes whose AAMs are accumulated into the region map; ``attributes``: the attributes that
can be asked per region (``--set sleeve:color=green``); ``subtract``: regions removed from this one
(the paper removes collar and sleeve from the torso); ``primary``: true for the one region the image-level
labels describe (the torso).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashionsearchnet.errors import SchemaError

SCHEMA_FORMAT = 1


def class_offsets(num_classes: Sequence[int]) -> tuple[int, ...]:
    """Start of each attribute's block in the concatenated class probabilities, and the total: (A+1,)."""
    return tuple(int(x) for x in np.cumsum((0, *num_classes)))


def block_argmax(probs: np.ndarray, num_classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per attribute block of ``probs`` (N, sum C_a): arg-max value index (N, A) int64 and its probability
    (N, A) float32 (the first of equal maxima)."""
    offs = class_offsets(num_classes)
    probs = np.asarray(probs)
    idx = np.stack([probs[:, offs[a]:offs[a + 1]].argmax(1) for a in range(len(offs) - 1)], 1)
    conf = np.stack([probs[:, offs[a]:offs[a + 1]].max(1) for a in range(len(offs) - 1)], 1)
    return idx.astype(np.int64), conf.astype(np.float32)


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            raise SchemaError(
                f"unknown value {value!r} for attribute {self.name!r}; valid values: {', '.join(self.values)}"
            ) from None


@dataclass(frozen=True)
class Region:
    name: str
    sources: tuple[str, ...]  # attributes whose AAMs make up the region
    attributes: tuple[str, ...]  # attributes askable for this region
    subtract: tuple[str, ...] = ()
    primary: bool = False  # the region the image-level labels describe (the torso in a catalogue)


@dataclass(frozen=True)
class Schema:
    attributes: tuple[Attribute, ...]
    regions: tuple[Region, ...] = field(default=())

    # ---- lookups -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.attributes)

    @property
    def class_offsets(self) -> tuple[int, ...]:
        """Start of each attribute's block in the concatenated class probabilities, and the total: (A+1,)."""
        return class_offsets(self.num_classes)

    def predicted(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arg-max value index (N, A) int64 and its probability (N, A) float32 per attribute."""
        return block_argmax(probs, self.num_classes)

    def predicted_values(self, probs: np.ndarray) -> list[dict[str, tuple[str, float]]]:
        """Per image {attribute: (arg-max value, its probability)}."""
        idx, conf = self.predicted(probs)
        return [{a.name: (a.values[i], c) for a, i, c in zip(self.attributes, row_i, row_c)}
                for row_i, row_c in zip(idx.tolist(), conf.tolist())]

    def difference(self, other: "Schema", regions: bool = True) -> str | None:
        """First difference from ``other`` in words (attributes, values, then the region linkage unless
        ``regions`` is False), or None when they are the same."""
        if self.names != other.names:
            return f"attributes {list(self.names)} vs {list(other.names)}"
        for x, y in zip(self.attributes, other.attributes):
            if x.values != y.values:
                extra = [v for v in y.values if v not in x.values]
                what = f"values {extra} are new" if extra else f"values {list(x.values)} vs {list(y.values)}"
                return f"attribute {x.name!r}: {what}"
        if regions and self.regions != other.regions:
            return f"regions {[r.name for r in self.regions]} vs {[r.name for r in other.regions]} (or their linkage)"
        return None

    def attr_index(self, name: str) -> int:
        for i, a in enumerate(self.attributes):
            if a.name == name:
                return i
        raise SchemaError(f"unknown attribute {name!r}; valid attributes: {', '.join(self.names)}")

    def attribute(self, name: str) -> Attribute:
        return self.attributes[self.attr_index(name)]

    def value_index(self, attr: str, value: str) -> int:
        return self.attribute(attr).index(value)

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        valid = ", ".join(r.name for r in self.regions) or "(this schema defines no regions)"
        raise SchemaError(f"unknown region {name!r}; valid regions: {valid}")

    @property
    def primary_region(self) -> str | None:
        return next((r.name for r in self.regions if r.primary), None)

    @property
    def region_pairs(self) -> tuple[tuple[str, str], ...]:
        """(region, attribute) pairs with a region-specific representation, in a fixed order."""
        return tuple((r.name, a) for r in self.regions for a in r.attributes)

    def region_pair_index(self, region: str, attr: str) -> int:
        reg = self.region(region)
        if attr not in reg.attributes:
            raise SchemaError(
                f"attribute {attr!r} cannot be asked for region {region!r}; valid: {', '.join(reg.attributes)}"
            )
        return self.region_pairs.index((region, attr))

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "attributes": [{"name": a.name, "values": list(a.values)} for a in self.attributes],
            "regions": {
                r.name: {"from": list(r.sources), "attributes": list(r.attributes), "subtract": list(r.subtract),
                         "primary": r.primary}
                for r in self.regions
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "schema") -> "Schema":
        """Build and validate a schema; errors name ``source`` and the field at fault."""
        if not isinstance(d, dict) or not isinstance(d.get("attributes"), list) or not d["attributes"]:
            raise SchemaError(f"{source}: 'attributes' must be a non-empty list of {{name, values}} objects")
        attrs: list[Attribute] = []
        for i, a in enumerate(d["attributes"]):
            if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
                raise SchemaError(f"{source}: attributes[{i}] needs a non-empty string 'name'")
            vals = a.get("values")
            if not isinstance(vals, list) or len(vals) < 2 or not all(isinstance(v, str) and v for v in vals):
                raise SchemaError(f"{source}: attribute {a['name']!r} needs 'values': a list of at least 2 strings")
            if len(set(vals)) != len(vals):
                raise SchemaError(f"{source}: attribute {a['name']!r} lists a value twice; remove the duplicate")
            if ":" in a["name"]:
                raise SchemaError(f"{source}: attribute name {a['name']!r} may not contain ':' (reserved for regions)")
            attrs.append(Attribute(a["name"], tuple(vals)))
        names = [a.name for a in attrs]
        if len(set(names)) != len(names):
            raise SchemaError(f"{source}: an attribute name appears twice in 'attributes'")
        regions: list[Region] = []
        raw_regions = d.get("regions", {}) or {}
        if not isinstance(raw_regions, dict):
            raise SchemaError(f"{source}: 'regions' must be an object mapping region name to {{from, attributes}}")
        for rname, r in raw_regions.items():
            if not isinstance(r, dict):
                raise SchemaError(f"{source}: regions.{rname} must be an object with 'from' and 'attributes'")
            for key in ("from", "attributes"):
                lst = r.get(key)
                if not isinstance(lst, list) or not lst:
                    raise SchemaError(f"{source}: regions.{rname}.{key} must be a non-empty list of attribute names")
                for n in lst:
                    if n not in names:
                        raise SchemaError(
                            f"{source}: regions.{rname}.{key} names unknown attribute {n!r}; valid: {', '.join(names)}"
                        )
            sub = r.get("subtract", []) or []
            for s in sub:
                if s not in raw_regions or s == rname:
                    raise SchemaError(f"{source}: regions.{rname}.subtract names {s!r}, which is not another region")
            regions.append(Region(rname, tuple(r["from"]), tuple(r["attributes"]), tuple(sub), bool(r.get("primary"))))
        if sum(r.primary for r in regions) > 1:
            raise SchemaError(f"{source}: more than one region has 'primary': true; mark only the one image labels describe")
        return cls(tuple(attrs), tuple(regions))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> "Schema":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SchemaError(f"{path}: file not found") from None
        except json.JSONDecodeError as e:
            raise SchemaError(f"{path}: line {e.lineno}: invalid JSON ({e.msg}); fix the syntax") from None
        except UnicodeDecodeError:
            raise SchemaError(f"{path}: not UTF-8 text; save schema.json as UTF-8") from None
        except RecursionError:
            raise SchemaError(f"{path}: JSON nested too deeply; a schema is a flat object of attributes and regions") from None
        return cls.from_dict(d, source=str(path))
