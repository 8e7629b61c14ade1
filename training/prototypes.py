"""Prototypes (section 3.3): the mean attribute representation (fc10_a) of every value over the training split,
used to replace an attribute's representation by the requested value's when a query is manipulated."""
from __future__ import annotations

import numpy as np


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
