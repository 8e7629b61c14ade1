"""How the ROI step thresholds and resolves the maps: per-map thresholds and a CAM upsampling factor (issue 17).

A :class:`RoiSettings` is ``attributes`` and ``regions`` thresholds ({name: fraction of the map's max}; an
attribute and a region may share a name, e.g. ``collar``; names left out use ``default``) and ``upsample`` (the maps are bilinearly upsampled ``upsample`` x before thresholding; boxes
come back in conv5 cell coordinates as floats, see :func:`fashionsearchnet.runtime.roi.all_boxes`).

A :class:`RoiChoice` holds two of them: ``heads``, the boxes the heads graph pools (the representations), and
``display``, the boxes a shopper sees and localisation is measured on. They differ when tighter boxes localise
better but the heads, trained on the paper's 0.2 boxes, retrieve worse with them (``fsn calibrate`` measures
that on validation). Stored in a checkpoint as ``roi`` and in a bundle's ``manifest.json`` ``roi`` object:
``thresholds`` ({"attributes": {...}, "regions": {...}}) and ``upsample`` (display) beside ``heads``
({"thresholds", "upsample"}); a bundle or checkpoint without them uses ``aam_threshold`` (0.2) without
upsampling for both, as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError

DEFAULT_THRESHOLD = 0.2
MAX_UPSAMPLE = 8


def _check_thresholds(kind: str, d: Any) -> dict[str, float]:
    if not isinstance(d, Mapping):
        raise UsageError(f"roi thresholds.{kind}: expected an object of name -> number, got {d!r:.60}")
    for name, t in d.items():
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0.0 <= float(t) < 1.0:
            raise UsageError(f"roi thresholds.{kind}.{name} = {t!r}: must be a number in [0, 1)")
    return {str(k): float(v) for k, v in d.items()}


@dataclass(frozen=True)
class RoiSettings:
    """Per-map thresholds (attribute AAMs and region maps, by name) and the upsampling factor of one set of boxes."""

    attributes: Mapping[str, float] = field(default_factory=dict)
    regions: Mapping[str, float] = field(default_factory=dict)
    upsample: int = 1
    default: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if isinstance(self.upsample, bool) or not isinstance(self.upsample, (int, np.integer)) or \
                not 1 <= int(self.upsample) <= MAX_UPSAMPLE:
            raise UsageError(f"roi upsample {self.upsample!r}: must be a whole number in 1..{MAX_UPSAMPLE}")
        object.__setattr__(self, "attributes", _check_thresholds("attributes", self.attributes))
        object.__setattr__(self, "regions", _check_thresholds("regions", self.regions))
        _check_thresholds("default", {"default": self.default})

    @property
    def is_default(self) -> bool:
        """The paper's ROI step: one threshold for every map, no upsampling (the fast path of ``all_boxes``)."""
        return int(self.upsample) == 1 and all(
            t == float(self.default) for t in [*self.attributes.values(), *self.regions.values()])

    def vector(self, schema: Schema) -> np.ndarray:
        """(A+R,) float32 thresholds in the order of the ``heads`` boxes: attributes, then regions."""
        regions = [r.name for r in schema.regions]
        for kind, got, names in (("attributes", self.attributes, schema.names), ("regions", self.regions, regions)):
            unknown = sorted(set(got) - set(names))
            if unknown:
                raise UsageError(f"roi thresholds.{kind} name {', '.join(map(repr, unknown))}, which the schema "
                                 f"does not have; valid: {', '.join(names) or 'none'}")
        return np.array([self.attributes.get(n, self.default) for n in schema.names]
                        + [self.regions.get(n, self.default) for n in regions], np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": {"attributes": dict(self.attributes), "regions": dict(self.regions)},
                "upsample": int(self.upsample)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], default: float = DEFAULT_THRESHOLD, where: str = "roi") -> "RoiSettings":
        if not isinstance(d, Mapping):
            raise UsageError(f"{where}: expected an object with 'thresholds' and 'upsample', got {d!r:.60}")
        th = d.get("thresholds", {})
        if not isinstance(th, Mapping) or set(th) - {"attributes", "regions"}:
            raise UsageError(f"{where}.thresholds: expected an object with 'attributes' and 'regions' (name -> "
                             f"number), got {th!r:.80}")
        try:
            return cls(th.get("attributes", {}), th.get("regions", {}), d.get("upsample", 1), default)
        except UsageError as e:
            raise UsageError(f"{where}: {e}") from None


@dataclass(frozen=True)
class RoiChoice:
    """The boxes the heads pool (``heads``) and the boxes shown and measured (``display``)."""

    heads: RoiSettings = field(default_factory=RoiSettings)
    display: RoiSettings = field(default_factory=RoiSettings)

    @property
    def same(self) -> bool:
        return self.heads == self.display

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``roi`` and the keys a bundle manifest's ``roi`` gains."""
        return {**self.display.to_dict(), "heads": self.heads.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "roi") -> "RoiChoice":
        """From a checkpoint's ``roi`` or a manifest's ``roi`` (old ones: the paper's 0.2 for both)."""
        d = dict(d or {})
        default = d.get("aam_threshold", DEFAULT_THRESHOLD)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise UsageError(f"{where}.aam_threshold: must be a number, got {default!r:.60}")
        display = RoiSettings.from_dict(d, float(default), where)
        heads = RoiSettings.from_dict(d["heads"], float(default), f"{where}.heads") if "heads" in d else display
        return cls(heads, display)
