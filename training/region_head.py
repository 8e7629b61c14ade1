"""Region-specific heads (issue 17): the representation of a region pair ``region:attr`` pooled from an EARLY
layer's map, so a collar or sleeve box describes that part and not the torso around it.

Why: the attribute heads pool conv5, whose cells see 81 x 81 px of the edge preset's 128 px image; a collar box
of conv5 cells mostly encodes the torso's colour (measured: the conv5 region representation of a two-tone item is
nearest to its own region value's prototype 2-4% of the time). ``pool2`` (after conv2 and the second max-pool)
has the same 15 x 15 grid as conv5, so the ROI step's boxes apply as they are, with 33 x 33 px receptive fields.

The paper pools region-specific representations with the attribute's own head; it does not train them (its data
has no per-region labels). Choice: one small head per region pair (standardised ``pool`` x ``pool`` crop of the
early map at the region's box -> fc ``hidden`` -> ReLU -> fc D), fitted after training on the frozen backbone with
the catalogue's region truth (``region:attr`` columns; the primary region uses the image-level labels), two-tone
rows (the part's value differs from the torso's) drawn as often as the rest. The layer and pool are chosen on the
validation rows by region specificity (``training/calibrate.py``).

The heads graph receives the early map appended to conv5 along the channel axis (the bundle's ``conv5`` tensor;
its channel count is the manifest's ``shapes.conv5``), so every runtime backend passes it on unchanged.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashionsearchnet.errors import CheckpointError

log = logging.getLogger(__name__)

REGION_LAYERS = ("pool2", "conv3")  # the maps a region head may read (same grid as conv5)
KINDS = ("crop", "attention")  # crop: this module; attention: training/region_attention.py
FIT_EPOCHS, FIT_BATCH, FIT_LR, DROPOUT = 25, 128, 1e-3, 0.2  # 25 epochs: 781 steps on 4,000 rows


@dataclass(frozen=True)
class RegionHeadSpec:
    """Which early map the region heads read, its crop size and the hidden width (stored in the checkpoint).
    ``kind`` "attention" (training/region_attention.py): ``layer`` is the context map its attention reads and
    ``pool`` the fine cells per conv5 cell side (K); checkpoints without the field hold crop heads."""

    layer: str = "pool2"
    pool: int = 6
    hidden: int = 64
    kind: str = "crop"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CheckpointError(f"region_head.kind {self.kind!r}: must be one of {', '.join(KINDS)}")
        if self.layer not in REGION_LAYERS:
            raise CheckpointError(f"region_head.layer {self.layer!r}: must be one of {', '.join(REGION_LAYERS)}")
        if self.pool < 1 or self.hidden < 1:
            raise CheckpointError(f"region_head pool {self.pool} / hidden {self.hidden}: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RegionHeadSpec | None":
        if d is None:
            return None
        try:
            return cls(str(d["layer"]), int(d["pool"]), int(d["hidden"]), str(d.get("kind", "crop")))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"region_head {dict(d)!r:.80}: needs layer, pool and hidden ({e})") from None


def layer_channels(preset, layer: str) -> int:
    """Channels of ``layer``'s map for a preset."""
    return {"pool2": preset.conv2, "conv3": preset.conv3}[layer]


class RegionHeads(nn.Module):
    """P region pairs' heads, batched: (B,P,in) standardised crops -> (B,P,D). ``mean``/``scale`` standardise each
    pair's flattened crop (set by :func:`fit_region_heads`)."""

    def __init__(self, num_pairs: int, in_features: int, hidden: int, rep_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_pairs, in_features))
        self.register_buffer("scale", torch.ones(num_pairs, in_features))
        bound1, bound2 = 1.0 / np.sqrt(in_features), 1.0 / np.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(num_pairs, in_features, hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.zeros(num_pairs, hidden))
        self.w2 = nn.Parameter(torch.empty(num_pairs, hidden, rep_dim).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.zeros(num_pairs, rep_dim))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = (crops - self.mean) / self.scale
        h = F.relu(torch.einsum("bpi,pih->bph", x, self.w1) + self.b1)
        return torch.einsum("bph,phd->bpd", h, self.w2) + self.b2


def balanced_weights(two_tone: np.ndarray) -> np.ndarray:
    """Sampling weights giving the two-tone rows as much total weight as the rest (all 1 when either is absent)."""
    n_two, n_rest = int(two_tone.sum()), int((~two_tone).sum())
    if n_two == 0 or n_rest == 0:
        return np.ones(len(two_tone))
    return np.where(two_tone, n_rest / n_two, 1.0)


def fit_region_heads(heads: RegionHeads, crops: torch.Tensor, labels: np.ndarray, two_tone: np.ndarray,
                     num_classes: Sequence[int], seed: int = 0, steps: int | None = None) -> dict[str, float]:
    """Fit every pair's head in place: cross-entropy of a linear classifier on its output (discarded), rows drawn
    by :func:`balanced_weights`, for ``steps`` batches (default :data:`FIT_EPOCHS` epochs' worth). ``crops``
    (N,P,in) unstandardised, ``labels`` (N,P) (-1 unknown: not used), ``two_tone`` (N,P) bool. Returns the last
    batch's loss per pair (a pair without labels keeps its init)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # dropout and the classifiers' init; the caller's RNG state is left as it was
        return _fit(heads, crops, labels, two_tone, num_classes, steps)


def fit_pair(params: Sequence[torch.Tensor], forward: Callable[[torch.Tensor], torch.Tensor], labels: torch.Tensor,
             two_tone: np.ndarray, num_classes: int, out_dim: int, steps: int | None = None) -> float:
    """One region pair's fit, shared by the crop and the attention heads: Adam on ``params`` and a linear classifier
    (discarded) over ``forward(batch)`` (the head's (B, out_dim) output for the batch's row positions), cross-entropy
    against ``labels``, rows drawn by :func:`balanced_weights`; ``steps`` batches (default :data:`FIT_EPOCHS`
    epochs' worth). Returns the last batch's loss."""
    cls = nn.Linear(out_dim, num_classes)
    opt = torch.optim.Adam([*params, *cls.parameters()], FIT_LR, weight_decay=1e-4)
    weights = torch.from_numpy(balanced_weights(two_tone))
    loss = torch.zeros(())
    for _ in range(steps or max(1, -(-FIT_EPOCHS * len(labels) // FIT_BATCH))):
        b = torch.multinomial(weights, FIT_BATCH, replacement=True)
        loss = F.cross_entropy(cls(forward(b)), labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return round(float(loss.detach()), 4)


def _fit(heads: RegionHeads, crops: torch.Tensor, labels: np.ndarray, two_tone: np.ndarray,
         num_classes: Sequence[int], steps: int | None) -> dict[str, float]:
    losses: dict[str, float] = {}
    for p, c in enumerate(num_classes):
        keep = np.flatnonzero(labels[:, p] >= 0)
        if len(keep) == 0:
            continue
        x = crops[torch.from_numpy(keep), p].float()
        mean, scale = x.mean(0), x.std(0) + 1e-3
        xn = (x - mean) / scale
        with torch.no_grad():
            heads.mean[p], heads.scale[p] = mean, scale
        w1, b1, w2, b2 = (t[p].detach().clone().requires_grad_() for t in (heads.w1, heads.b1, heads.w2, heads.b2))
        losses[str(p)] = fit_pair([w1, b1, w2, b2], lambda b: F.relu(F.dropout(xn[b], DROPOUT) @ w1 + b1) @ w2 + b2,
                                  torch.from_numpy(labels[keep, p].astype(np.int64)), two_tone[keep, p], c,
                                  w2.shape[1], steps)
        with torch.no_grad():
            heads.w1[p], heads.b1[p], heads.w2[p], heads.b2[p] = w1, b1, w2, b2
    return losses
