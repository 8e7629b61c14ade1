"""The global representation F(I, a*) of eq. 7, numpy (the torch twin is training/model.py; parity-tested).

``F(reps, a*) = (reps * lam[a*][:, None]).reshape(A*D) @ W[a*]`` with ``lam`` (A+1, A) and ``W`` (A+1, A*D, G);
set 0 = no manipulation, set 1+a = manipulation of attribute a.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError


def global_representation(attr_reps: np.ndarray, lam: np.ndarray, W: np.ndarray, astar: int) -> np.ndarray:
    """(N, A, D) attribute representations -> (N, G) float32 global representation for set ``astar``."""
    attr_reps = np.asarray(attr_reps, dtype=np.float32)
    lam = np.asarray(lam, dtype=np.float32)
    W = np.asarray(W, dtype=np.float32)
    if attr_reps.ndim != 3:
        raise UsageError(f"attr_reps: expected (N, A, D), got shape {attr_reps.shape}")
    n, a, d = attr_reps.shape
    if lam.shape != (a + 1, a) or W.ndim != 3 or W.shape[:2] != (a + 1, a * d):
        raise UsageError(
            f"global params: lam {lam.shape} / W {W.shape} do not fit attr_reps {attr_reps.shape}; "
            f"expected lam ({a + 1}, {a}) and W ({a + 1}, {a * d}, G)"
        )
    if not 0 <= int(astar) <= a:
        raise UsageError(f"astar={astar} out of range; use 0 (no manipulation) .. {a} (1 + attribute index)")
    weighted = attr_reps * lam[int(astar)][None, :, None]
    return weighted.reshape(n, a * d) @ W[int(astar)]


# fsn_region's down-weight of the representations a region request does not touch (section 4.4; the paper gives
# no value). Chosen on a validation split of the training rows (benchmarks/region_weight.py): 0.5 on the
# 20k-image synthetic run (0.5-1.0 tie; 0.3, the first guess, loses 1.4 points of validation Top-30).
DEFAULT_REGION_WEIGHT = 0.5


@dataclass
class SearchParams:
    """What a search needs from a trained model: prototypes (C_a, D) per attribute, lam (A+1, A), W (A+1, A*D, G)."""

    schema: Schema
    prototypes: list[np.ndarray]
    lam: np.ndarray
    W: np.ndarray
    region_weight: float = DEFAULT_REGION_WEIGHT

    def __post_init__(self) -> None:
        A = len(self.schema.attributes)
        if len(self.prototypes) != A:
            raise UsageError(f"SearchParams.prototypes: {len(self.prototypes)} arrays for {A} attributes; give one per attribute")
        for a, (p, attr) in enumerate(zip(self.prototypes, self.schema.attributes)):
            if p.ndim != 2 or p.shape[0] != len(attr.values):
                raise UsageError(
                    f"SearchParams.prototypes[{a}] ({attr.name}): shape {p.shape}, expected ({len(attr.values)}, D)"
                )
        self.lam = np.asarray(self.lam)
        self.W = np.asarray(self.W)
        D = self.prototypes[0].shape[1]
        if self.lam.shape != (A + 1, A):
            raise UsageError(f"SearchParams.lam: shape {self.lam.shape}, expected ({A + 1}, {A})")
        if self.W.ndim != 3 or self.W.shape[:2] != (A + 1, A * D):
            raise UsageError(f"SearchParams.W: shape {self.W.shape}, expected ({A + 1}, {A * D}, G)")
        if not 0.0 <= float(self.region_weight) <= 1.0:
            raise UsageError(f"SearchParams.region_weight = {self.region_weight}: must be in [0, 1]")

    @property
    def dim(self) -> int:
        return int(self.prototypes[0].shape[1])

    @property
    def global_dim(self) -> int:
        return int(self.W.shape[2])
