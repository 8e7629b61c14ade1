"""Attention region heads (issue 17): a region pair's representation pooled by a learned attention over FINE cells,
so a sleeve or collar that covers a sliver of its box is read without the torso around it.

Why (measured on 1,000 validation rows of the 8k basic catalogue, seed-0 edge run, 2,000 fit rows): crop heads on
pool2 at the calibrated region boxes give a mean collar/sleeve specificity of 27%; the same crop heads on a 45 x 45
RGB map at the TRUE part boxes give 68% (collar 74, sleeve colour 85). The boxes, not the features, are the limit:
a sleeve box holds the torso's side, a collar box mostly torso. This head does not trust the box. It scores every
cell with a small network and pools the cells it attends to:

- coarse score, per conv5 cell (h x w): the context map (``pool2``), the RGB colours of its K x K fine cells, the
  pair's region map (normalised by its maximum: section 3.4's map, the prior) and the share of the cell inside the
  region box (from the ROI step);
- fine score, per fine cell (hK x wK): the cell's RGB colour and conv1 features, plus the coarse score;
- the softmax over all fine cells of (coarse + fine score) pools the fine features and (summed over each cell's
  K x K block) the coarse ones; fc ``hidden`` -> ReLU -> fc D gives the representation.

The fine maps are the input image and conv1, area-resampled to hK x wK, so fine cell j covers pixels
[j S/(hK), (j+1) S/(hK)) and conv5 cell i is fine cells iK .. iK+K-1. The backbone graph packs them into its
``conv5`` output (space-to-depth: K*K channels per fine channel, on conv5's grid) after the context map, followed
by the R normalised region maps, so the runtime passes one tensor between the graphs as before.
Choice: K = 3 (2.8 px cells at the edge preset's 128 px: a collar trim is about one cell thick); measured 61% mean
specificity on the rows above (coarse attention alone: 53%).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashionsearchnet.training.region_head import fit_pair

RGB = 3
ATT_HIDDEN, LOCAL_HIDDEN = 32, 16
OUT_DROPOUT = 0.1  # on the head's output while fitting (epochs, batch and rate: region_head.fit_pair)


@functools.lru_cache(maxsize=16)
def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32: row j averages the input cells under output cell j's extent, weighted by overlap
    (area resampling of a map that spans the same extent at both sizes)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    cells = np.arange(n_in, dtype=np.float64)
    lo, hi = edges[:-1, None], edges[1:, None]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return (overlap / (hi - lo)).astype(np.float32)


def area_resize(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """(B,C,n,n) -> (B,C,n_out,n_out) by :func:`area_matrix` (two matrix products: exports to any ONNX runtime)."""
    m = torch.from_numpy(area_matrix(int(x.shape[-1]), n_out)).to(x.dtype)
    return m @ x @ m.T


def normalised_region_maps(region_maps: torch.Tensor) -> torch.Tensor:
    """(B,R,h,w) -> each map divided by its maximum (a non-positive maximum: by a tiny number), clipped to [-1, 1]."""
    mx = region_maps.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return (region_maps / mx).clamp(-1.0, 1.0)


def pack_early(context: torch.Tensor, image: torch.Tensor, conv1: torch.Tensor, region_maps: torch.Tensor,
               k: int) -> torch.Tensor:
    """The early maps the attention heads read, on conv5's h x w grid: (B, Cc + (3 + C1) K^2 + R, h, w) = context
    map, space-to-depth of [image, conv1] at hK x hK, normalised region maps."""
    n = int(context.shape[-1]) * k
    fine = torch.cat([area_resize(image, n), area_resize(conv1, n)], dim=1)
    return torch.cat([context, F.pixel_unshuffle(fine, k), normalised_region_maps(region_maps)], dim=1)


def box_cover(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B,P,4) inclusive cell boxes (fractional allowed) -> (B,P,h,w) share of each cell inside the box extent
    [x0 - 0.5, x1 + 0.5] x [y0 - 0.5, y1 + 0.5] (1 inside a whole-cell box, 0 outside)."""
    def cover(lo: torch.Tensor, hi: torch.Tensor, n: int) -> torch.Tensor:
        c = torch.arange(n, dtype=boxes.dtype, device=boxes.device)
        return (torch.minimum(hi[..., None] + 0.5, c + 0.5) - torch.maximum(lo[..., None] - 0.5, c - 0.5)).clamp(0, 1)
    cy = cover(boxes[..., 1], boxes[..., 3], h)
    cx = cover(boxes[..., 0], boxes[..., 2], w)
    return cy[..., :, None] * cx[..., None, :]


def _upsample(t: torch.Tensor, k: int) -> torch.Tensor:
    """(B,1,h,w) -> (B,1,hK,wK), each cell repeated K x K (expand + reshape: no Resize operator)."""
    b, c, h, w = t.shape
    return t[:, :, :, None, :, None].expand(b, c, h, k, w, k).reshape(b, c, h * k, w * k)


class PairAttention(nn.Module):
    """One region pair's attention head (module doc). ``coarse`` = context + RGB space-to-depth channels,
    ``fine`` = RGB + conv1 channels; mean/scale buffers standardise them (set by :func:`fit_attention_heads`)."""

    def __init__(self, coarse: int, fine: int, hidden: int, rep_dim: int):
        super().__init__()
        self.register_buffer("coarse_mean", torch.zeros(1, coarse, 1, 1))
        self.register_buffer("coarse_scale", torch.ones(1, coarse, 1, 1))
        self.register_buffer("fine_mean", torch.zeros(1, fine, 1, 1))
        self.register_buffer("fine_scale", torch.ones(1, fine, 1, 1))
        self.score1 = nn.Conv2d(coarse + 2, ATT_HIDDEN, 1)
        self.score2 = nn.Conv2d(ATT_HIDDEN, 1, 1)
        self.local1 = nn.Conv2d(fine + 1, LOCAL_HIDDEN, 1)
        self.local2 = nn.Conv2d(LOCAL_HIDDEN, 1, 1)
        self.fc1 = nn.Linear(coarse + fine, hidden)
        self.fc2 = nn.Linear(hidden, rep_dim)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor, prior: torch.Tensor, inside: torch.Tensor,
                k: int) -> torch.Tensor:
        """coarse (B,Cc,h,w), fine (B,Cf,hK,wK), prior / inside (B,h,w) -> (B,D)."""
        xc = (coarse - self.coarse_mean) / self.coarse_scale
        xf = (fine - self.fine_mean) / self.fine_scale
        sc = self.score2(F.relu(self.score1(torch.cat([xc, prior[:, None], inside[:, None]], dim=1))))
        up = _upsample(sc, k)
        s = up + self.local2(F.relu(self.local1(torch.cat([xf, up], dim=1))))  # (B,1,hK,wK)
        b, _, hk, wk = s.shape
        att = torch.softmax(s.reshape(b, hk * wk), dim=1).reshape(b, 1, hk, wk)
        pooled_fine = (xf * att).sum(dim=(2, 3))
        att_c = att.reshape(b, 1, hk // k, k, wk // k, k).sum(dim=(3, 5))  # each conv5 cell's share
        pooled_coarse = (xc * att_c).sum(dim=(2, 3))
        return self.fc2(F.relu(self.fc1(torch.cat([pooled_coarse, pooled_fine], dim=1))))


class AttentionRegionHeads(nn.Module):
    """Every region pair's :class:`PairAttention` on the packed early map (:func:`pack_early`): (B,Ce,h,w) packed
    x (B,P,4) the pairs' region boxes -> (B,P,D)."""

    def __init__(self, pair_regions: list[int], context: int, conv1: int, k: int, hidden: int, rep_dim: int):
        super().__init__()
        self.pair_regions, self.context, self.conv1, self.k = list(pair_regions), context, conv1, k
        coarse, fine = context + RGB * k * k, RGB + conv1
        self.pairs = nn.ModuleList([PairAttention(coarse, fine, hidden, rep_dim) for _ in pair_regions])

    def split(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(coarse, fine, normalised region maps) of a packed early map."""
        k2 = self.k * self.k
        c, f_end = self.context, self.context + (RGB + self.conv1) * k2
        coarse = packed[:, :c + RGB * k2]  # the context map, then the RGB space-to-depth channels
        fine = F.pixel_shuffle(packed[:, c:f_end], self.k)
        return coarse, fine, packed[:, f_end:]

    def forward(self, packed: torch.Tensor, pair_boxes: torch.Tensor) -> torch.Tensor:
        coarse, fine, prior = self.split(packed)
        inside = box_cover(pair_boxes, int(packed.shape[2]), int(packed.shape[3]))
        return torch.stack([head(coarse, fine, prior[:, r], inside[:, p], self.k)
                            for p, (head, r) in enumerate(zip(self.pairs, self.pair_regions))], dim=1)


def fit_attention_heads(heads: AttentionRegionHeads, packed: torch.Tensor, pair_boxes: torch.Tensor,
                        labels: np.ndarray, two_tone: np.ndarray, num_classes: list[int], seed: int = 0,
                        steps: int | None = None) -> dict[str, float]:
    """Fit every pair's head in place with ``region_head.fit_pair`` (the crop heads' fit loop too): cross-entropy of
    a discarded linear classifier on the head's output (dropout :data:`OUT_DROPOUT`), two-tone rows balanced. ``packed`` (N,Ce,h,w) may be float16 (upcast per batch). Returns the last loss per pair."""
    losses: dict[str, float] = {}
    h, w = int(packed.shape[2]), int(packed.shape[3])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for p, (head, c) in enumerate(zip(heads.pairs, num_classes)):
            keep = np.flatnonzero(labels[:, p] >= 0)
            if len(keep) == 0:
                continue
            _standardise(heads, head, packed[torch.from_numpy(keep[:1000])])
            rows_of = torch.from_numpy(keep)
            r = heads.pair_regions[p]

            def forward(b: torch.Tensor, head: PairAttention = head, p: int = p, r: int = r) -> torch.Tensor:
                rows = rows_of[b]
                coarse, fine, prior = heads.split(packed[rows].float())
                inside = box_cover(pair_boxes[rows, p:p + 1].float(), h, w)
                return F.dropout(head(coarse, fine, prior[:, r], inside[:, 0], heads.k), OUT_DROPOUT)

            head.train()
            losses[str(p)] = fit_pair(list(head.parameters()), forward,
                                      torch.from_numpy(labels[keep, p].astype(np.int64)), two_tone[keep, p], c,
                                      head.fc2.out_features, steps)
            head.eval()
    return losses


@torch.no_grad()
def _standardise(heads: AttentionRegionHeads, head: PairAttention, sample: torch.Tensor) -> None:
    coarse, fine, _ = heads.split(sample.float())
    for x, mean, scale in ((coarse, head.coarse_mean, head.coarse_scale), (fine, head.fine_mean, head.fine_scale)):
        mean.copy_(x.mean(dim=(0, 2, 3), keepdim=True))
        scale.copy_(x.std(dim=(0, 2, 3), keepdim=True) + 1e-3)
