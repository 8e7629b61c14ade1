"""The global representation of eq. 7, written once (numpy; the torch twin is training/model.py, parity-tested).

``F(reps, a*) = (reps * lam[a*][:, None]).reshape(A*D) @ W[a*]`` with ``lam`` (A+1, A) and ``W`` (A+1, A*D, G);
set 0 = no manipulation, set 1+a = manipulation of attribute a.

The product has three kernels, chosen by the caller for speed and for which results must be bit-identical:
- ``"gemm"``: one float32 BLAS product over all rows (extraction, index building, cached norms);
- ``"blocks"``: float32 in fixed blocks of 8 rows (the last zero-padded) so that BLAS stays on the calling
  thread and a row's result does not depend on which rows share its block (exact re-scoring of candidates);
- ``"float64"``: float64, row by row without BLAS (one query against an hnsw index).
"""
from __future__ import annotations

import numpy as np

from fashionsearchnet.errors import UsageError

KERNELS = ("gemm", "blocks", "float64")
SMALL_GEMM_ROWS = 8  # OpenBLAS runs products this small on the calling thread (threaded small gemms stalled
# 8-16 ms on the busy 2-core machine, 0.2 ms in blocks of 8 rows: measured for 250 x 320 @ 320 x 128)


def weighted_reps(attr_reps: np.ndarray, lam: np.ndarray, astar: int, dtype=np.float32) -> np.ndarray:
    """``(reps * lam[a*][:, None]).reshape(N, A*D)`` in ``dtype``: the input of eq. 7's product."""
    x = np.asarray(attr_reps).astype(dtype, copy=False)
    lam_row = np.asarray(lam)[int(astar)].astype(dtype, copy=False)
    return (x * lam_row[None, :, None]).reshape(x.shape[0], x.shape[1] * x.shape[2])


def global_representation(attr_reps: np.ndarray, lam: np.ndarray, W: np.ndarray, astar: int,
                          kernel: str = "gemm") -> np.ndarray:
    """(N, A, D) attribute representations -> (N, G) global representation for set ``astar``: float32 for
    the ``gemm`` and ``blocks`` kernels, float64 for ``float64`` (see the module docstring)."""
    attr_reps = np.asarray(attr_reps)
    lam, W = np.asarray(lam), np.asarray(W)
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
    if kernel == "float64":
        x = weighted_reps(attr_reps, lam, astar, np.float64)
        Ws = W[int(astar)]
        return np.stack([np.einsum("k,kg->g", row, Ws, optimize=False) for row in x]) if n else \
            np.zeros((0, W.shape[2]), np.float64)
    x = weighted_reps(attr_reps, lam, astar, np.float32)
    Ws = W[int(astar)].astype(np.float32, copy=False)
    if kernel == "gemm":
        return x @ Ws
    if kernel != "blocks":
        raise UsageError(f"kernel {kernel!r}: valid {', '.join(KERNELS)}")
    out = np.empty((len(x), Ws.shape[1]), np.float32)
    full = len(x) - len(x) % SMALL_GEMM_ROWS
    for s in range(0, full, SMALL_GEMM_ROWS):
        out[s:s + SMALL_GEMM_ROWS] = x[s:s + SMALL_GEMM_ROWS] @ Ws
    if full < len(x):
        pad = np.zeros((SMALL_GEMM_ROWS, x.shape[1]), np.float32)
        pad[:len(x) - full] = x[full:]
        out[full:] = (pad @ Ws)[:len(x) - full]
    return out
