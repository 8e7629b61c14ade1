"""The label-free ``region_specificity`` figure: does a region's representation describe that region?

Over the gallery's two-tone items for a (region, attribute) pair on a non-primary region (collar, sleeve) -
the region's true value of the attribute differs from the primary region's (torso's) - the share (percent) whose
region representation (``region_reps`` of that pair) is nearest (L2) among the attribute's prototypes
(``SearchParams.region_prototype``: region-specific where the model has them, else the image-level ones) to the
prototype of the region's TRUE value. A representation that only sees the torso answers the torso's value and
scores 0 on these items. ``n`` counts the distinct items that are two-tone in at least one reported pair; each
pair's own count is ``n:<region>:<attribute>``; ``prototypes`` says which prototypes were used (``region``,
``image`` or ``mixed``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.evaluation.protocol import primary_values
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable


def two_tone_mask(dataset: Dataset, region: str, attr: str, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) whether each row's known ``region:attr`` value differs from its known primary-region value."""
    col = f"{region}:{attr}"
    if col not in dataset.region_labels:
        return np.zeros(len(rows), bool)
    v, p = dataset.region_labels[col][rows], primary_values(dataset, attr, rows)
    return (v >= 0) & (p >= 0) & (v != p)


def two_tone_rows(dataset: Dataset, region: str, attr: str, rows: np.ndarray) -> np.ndarray:
    """The ``rows`` whose known ``region:attr`` value differs from their known primary-region value."""
    return rows[two_tone_mask(dataset, region, attr, rows)]


def nearest_prototype(reps: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """(N,) index of the L2-nearest row of ``prototypes`` (C, D) to each of ``reps`` (N, D) (ties: the smaller)."""
    r, p = reps.astype(np.float64), prototypes.astype(np.float64)
    d = (r ** 2).sum(1)[:, None] - 2.0 * r @ p.T + (p ** 2).sum(1)[None, :]
    return np.argmin(d, axis=1)


def region_specificity(dataset: Dataset, params: SearchParams, table: FeatureTable,
                       rows: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """``{"<region>:<attribute>": share in percent, ..., "n": items, "n:<region>:<attribute>": items,
    "prototypes": "region"|"image"|"mixed"}`` over the two-tone items among ``rows`` (default: the gallery)."""
    schema = dataset.schema
    rows = dataset.indices("gallery") if rows is None else np.asarray(rows, np.int64)
    out: dict[str, Any] = {}
    used: set[str] = set()
    items: set[int] = set()
    for p, (region, attr) in enumerate(schema.region_pairs):
        if region == schema.primary_region or p >= table.region_reps.shape[1]:
            continue
        tt = two_tone_rows(dataset, region, attr, rows)
        if len(tt) == 0:
            continue
        key = f"{region}:{attr}"
        used.add("region" if key in params.region_prototypes else "image")
        nearest = nearest_prototype(table.region_reps[tt, p], params.region_prototype(region, attr))
        out[key] = round(100.0 * float((nearest == dataset.region_labels[key][tt]).mean()), 3)
        out[f"n:{key}"] = int(len(tt))
        items.update(int(r) for r in tt)
    out["n"] = len(items)
    out["prototypes"] = used.pop() if len(used) == 1 else ("mixed" if used else "none")
    return out
