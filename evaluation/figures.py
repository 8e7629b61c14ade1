"""The label-free figures ``fsn eval`` reports beside the search protocols, from each trained method's features:

- ``region_specificity`` (evaluation/specificity.py): ``{"<method>": {"<region>:<attribute>": share, ..., "n":
  items}}`` for the methods with region representations (not ``attribute``, which has none of its own).
- ``localisation`` (evaluation/localisation.py): ``{"<method>": {"<attribute>": mean box IoU, ...,
  "region:<region>": mean IoU, "n": images}}`` over the gallery, where the catalogue has ``masks/``; methods
  whose boxes come from the ROI step (``fsn``; ``no_aam``'s whole-map boxes are its baseline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable

FIGURES = ("region_specificity", "localisation")
NO_REGION_REPS = ("attribute",)  # trained methods without region representations of their own


@dataclass
class MethodFeatures:
    """One trained method's features of every dataset row (zeros outside the rows evaluated): the search table,
    its SearchParams and the ROI step's boxes (N, A+R, 4) in inclusive cells of a ``map_hw`` map (None: no boxes)."""

    params: SearchParams
    table: FeatureTable
    boxes: np.ndarray | None = None
    map_hw: tuple[int, int] | None = None


def figure(dataset: Dataset, name: str, features: Mapping[str, MethodFeatures]) -> dict[str, dict[str, Any]]:
    """``{method: {...}}`` of figure ``name`` (one of :data:`FIGURES`) for every method it applies to."""
    from fashionsearchnet.evaluation.localisation import localisation
    from fashionsearchnet.evaluation.specificity import region_specificity

    out: dict[str, dict[str, Any]] = {}
    gallery = dataset.indices("gallery")
    for method, f in features.items():
        if name == "region_specificity":
            if method in NO_REGION_REPS or f.table.region_reps.shape[1] == 0:
                continue
            out[method] = region_specificity(dataset, f.params, f.table, gallery)
        elif name == "localisation":
            if f.boxes is None or f.map_hw is None:
                continue
            schema = dataset.schema
            out[method] = localisation(dataset, f.boxes, f.map_hw, gallery, schema.names,
                                       region_names=[r.name for r in schema.regions])
        else:
            raise ValueError(f"unknown figure {name!r}; valid: {', '.join(FIGURES)}")
    return out


def figures_table(result: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The figures of an evaluation result as markdown: one row per (figure, method), its numeric entries."""
    lines = []
    for name in FIGURES:
        for method, r in result.get(name, {}).items():
            vals = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
            lines.append(f"| {name} | {method} | {vals} |")
    return "\n".join(["| figure | method | values |", "|---|---|---|"] + lines) if lines else ""
