"""The losses of section 3: L_C / L_TC (eq. 2, unknown labels masked) and the soft-triplet d+ (eqs. 4-6, 8)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

DIST_EPS = 1e-12  # inside the square root: the gradient of ||x|| at x = 0 would be NaN


def l2_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance ||x - y||_2 (finite gradient at x == y)."""
    return torch.sqrt(((x - y) ** 2).sum(dim=-1) + DIST_EPS)


def soft_triplet(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Mean over triplets of d+ (eq. 4): exp(||a-p||) / (exp(||a-p||) + exp(||a-n||)).

    Written as sigmoid(||a-p|| - ||a-n||), the numerically stable form of that two-way softmax
    (no overflow for large distances). Eq. 6 minimises d+ itself. Empty input -> 0.
    """
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    return torch.sigmoid(l2_distance(anchor, positive) - l2_distance(anchor, negative)).mean()


def classification_loss(logits: torch.Tensor | Sequence[torch.Tensor], labels: torch.Tensor,
                        offsets: Sequence[int] | None = None) -> torch.Tensor:
    """Eq. 2: sum over attributes of the mean cross-entropy over images whose label is known (-1 = masked).

    ``logits`` is either one (B, sum C_a) tensor split by ``offsets`` or a list of (B, C_a) tensors.
    An attribute with no known label in the batch contributes 0.
    """
    if isinstance(logits, torch.Tensor):
        if offsets is None:
            raise ValueError("offsets are needed to split concatenated logits")
        blocks = [logits[:, offsets[a]:offsets[a + 1]] for a in range(len(offsets) - 1)]
    else:
        blocks = list(logits)
    total = blocks[0].sum() * 0.0
    for a, block in enumerate(blocks):
        y = labels[:, a]
        known = y >= 0
        if bool(known.any()):
            total = total + F.cross_entropy(block[known], y[known])
    return total
