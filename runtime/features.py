"""The global representation F(I, a*) of eq. 7, numpy (the torch twin is training/model.py; parity-tested).

``F(reps, a*) = (reps * lam[a*][:, None]).reshape(A*D) @ W[a*]`` with ``lam`` (A+1, A) and ``W`` (A+1, A*D, G);
set 0 = no manipulation, set 1+a = manipulation of attribute a.
"""
from __future__ import annotations

import numpy as np

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
