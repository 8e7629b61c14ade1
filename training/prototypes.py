"""Prototypes (section 3.3): the mean attribute representation (fc10_a) of every value over the training split,
used to replace an attribute's representation by the requested value's when a query is manipulated."""
from __future__ import annotations

import numpy as np

from fashionsearchnet.data.schema import Schema


def compute_prototypes(attr_reps: np.ndarray, labels: np.ndarray, num_classes: tuple[int, ...]) -> list[np.ndarray]:
    """prototypes[a] (C_a, D): mean rep of attribute a over rows labelled with each value; unseen -> mean of all."""
    out = []
    for a, c in enumerate(num_classes):
        reps = attr_reps[:, a].astype(np.float64)
        overall = reps.mean(axis=0) if len(reps) else np.zeros(attr_reps.shape[2])
        proto = np.empty((c, attr_reps.shape[2]), np.float64)
        for v in range(c):
            sel = labels[:, a] == v
            proto[v] = reps[sel].mean(axis=0) if sel.any() else overall
        out.append(proto.astype(np.float32))
    return out


def region_truth(region_labels: dict[str, np.ndarray], image_labels: np.ndarray, schema: Schema, region: str,
                 attr: str) -> np.ndarray | None:
    """The value of ``attr`` in ``region`` per row: the REGION truth column ``region:attr``; for the primary region
    without one, the image-level labels (they describe it); None for a non-primary region without a column."""
    key = f"{region}:{attr}"
    if key in region_labels:
        return np.asarray(region_labels[key])
    if region == schema.primary_region:
        return image_labels[:, schema.attr_index(attr)]
    return None


def compute_region_prototypes(region_reps: np.ndarray, region_labels: dict[str, np.ndarray], image_labels: np.ndarray,
                              schema: Schema, image_prototypes: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Region-specific prototypes (issue 17): for every region pair ``region:attr`` the mean region representation
    (the heads' ``region_reps``, the attribute's head pooled from the region's box) of the rows whose REGION
    truth column ``region:attr`` holds each value. The primary region without a truth column uses the image-level
    labels (they describe it); a non-primary pair without one gets none (searches fall back to the image-level
    prototypes). A value no row has: the image-level prototype of that value (the same head, so the same space).

    ``region_reps`` (N, P, D), ``region_labels`` {"region:attr": (N,)} (-1 unknown), ``image_labels`` (N, A)."""
    out: dict[str, np.ndarray] = {}
    for p, (region, attr) in enumerate(schema.region_pairs):
        key = f"{region}:{attr}"
        a = schema.attr_index(attr)
        lab = region_truth(region_labels, image_labels, schema, region, attr)
        if lab is None:
            continue
        reps = region_reps[:, p].astype(np.float64)
        proto = image_prototypes[a].astype(np.float64).copy()
        for v in range(len(schema.attributes[a].values)):
            sel = lab == v
            if sel.any():
                proto[v] = reps[sel].mean(axis=0)
        out[key] = proto.astype(np.float32)
    return out
