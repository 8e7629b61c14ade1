"""A small stand-in for training/model.py's FashionSearchNet used by export/runtime tests: same contract
(``backbone(images) -> (conv5, probs, aams, region_maps)``, ``heads(conv5, boxes) -> (attr_reps, region_reps)``),
CAM-style AAMs and grid_sample ROI pooling, a few thousand parameters. Needs torch (tests only)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gallery_fixtures
from fashionsearchnet.data.schema import Schema


def synthetic_schema() -> Schema:
    """The small 5-attribute schema with region linkage that the gallery tests use too (one definition)."""
    return gallery_fixtures.schema()


def crop_and_resize(conv5: torch.Tensor, boxes: torch.Tensor, pool: int) -> torch.Tensor:
    """(B,C,h,w), (B,K,4) inclusive cell boxes -> (B*K, C, pool, pool) by bilinear grid_sample."""
    B, C, h, w = conv5.shape
    K = boxes.shape[1]
    t = torch.linspace(0, 1, pool, dtype=conv5.dtype, device=conv5.device)
    x0, y0, x1, y1 = boxes.unbind(-1)  # (B,K)
    xs = x0[..., None] + (x1 - x0)[..., None] * t  # (B,K,P)
    ys = y0[..., None] + (y1 - y0)[..., None] * t
    gx = xs * (2.0 / max(w - 1, 1)) - 1.0
    gy = ys * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, :, None, :], gy[:, :, :, None]), dim=-1)  # (B,K,P,P,2)
    feats = conv5[:, None].expand(B, K, C, h, w).reshape(B * K, C, h, w)
    return F.grid_sample(feats, grid.reshape(B * K, pool, pool, 2), mode="bilinear", align_corners=True)


class StandinFSN(nn.Module):
    def __init__(self, schema: Schema, c5: int = 16, c7: int = 24, dim: int = 8, pool: int = 3, size: int = 64):
        super().__init__()
        self.schema, self.pool, self.size, self.dim = schema, pool, size, dim
        self.trunk = nn.Sequential(nn.Conv2d(3, 12, 5, stride=4, padding=2), nn.ReLU(),
                                   nn.Conv2d(12, c5, 3, stride=2, padding=1), nn.ReLU())
        self.conv67 = nn.Sequential(nn.Conv2d(c5, c7, 3, padding=1), nn.ReLU())
        self.cls = nn.ModuleList(nn.Linear(c7, len(a.values)) for a in schema.attributes)
        self.fc = nn.ModuleList(nn.Linear(c5 * pool * pool, dim) for _ in schema.attributes)
        names = schema.names
        self.region_src = [[names.index(s) for s in r.sources] for r in schema.regions]
        self.pairs = [names.index(a) for _, a in schema.region_pairs]
        self.pair_region = [[r.name for r in schema.regions].index(rn) for rn, _ in schema.region_pairs]

    def backbone(self, images: torch.Tensor):
        conv5 = self.trunk(images)
        conv7 = self.conv67(conv5)
        gap = conv7.mean(dim=(2, 3))
        probs, aams, cams_all = [], [], []
        for lin in self.cls:
            p = torch.softmax(lin(gap), dim=1)
            cams = torch.einsum("kc,bchw->bkhw", lin.weight, conv7)  # (B,C_a,h,w)
            top = p.argmax(dim=1)
            aams.append(torch.gather(cams, 1, top[:, None, None, None].expand(-1, 1, *cams.shape[2:]))[:, 0])
            probs.append(p)
            cams_all.append(cams)
        regions = []
        for src in self.region_src:
            acc = 0
            for a in src:
                wgt = probs[a] * (probs[a] > 0.1).to(probs[a].dtype)
                acc = acc + torch.einsum("bk,bkhw->bhw", wgt, cams_all[a])
            regions.append(acc)
        return conv5, torch.cat(probs, 1), torch.stack(aams, 1), torch.stack(regions, 1)

    def heads(self, conv5: torch.Tensor, boxes: torch.Tensor):
        B = conv5.shape[0]
        A = len(self.cls)
        pooled = crop_and_resize(conv5, boxes, self.pool).reshape(B, boxes.shape[1], -1)
        attr = torch.stack([self.fc[a](pooled[:, a]) for a in range(A)], 1)
        reg = torch.stack([self.fc[a](pooled[:, A + r]) for a, r in zip(self.pairs, self.pair_region)], 1)
        return attr, reg


def standin_params(schema: Schema, dim: int = 8, G: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = len(schema.attributes)
    out = {f"prototypes_{a}": rng.normal(size=(len(at.values), dim)).astype(np.float32)
           for a, at in enumerate(schema.attributes)}
    out["lam"] = rng.uniform(0.5, 1.5, size=(A + 1, A)).astype(np.float32)
    out["W"] = rng.normal(size=(A + 1, A * dim, G)).astype(np.float32)
    return out


# ---- a real tiny FashionSearchNet checkpoint and its bundle, made once per test process -----------------
_BUNDLES: dict[tuple[str, str], "object"] = {}


def make_tiny_checkpoint(path, method: str = "fsn", seed: int = 0):
    """Write RUN/<method>/checkpoint.pt for a randomly initialised tiny-preset model (the documented fields)."""
    from pathlib import Path

    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    return Checkpoint.untrained(synthetic_schema(), PRESETS["tiny"], method, seed, 0.3).save(
        Path(path) / method / "checkpoint.pt")


def tiny_bundle(tmp_path_factory, method: str = "fsn", precision: str = "fp32"):
    """(bundle path, run folder) exported from a tiny checkpoint; cached for the test process (export ~5 s)."""
    key = (method, precision)
    if key not in _BUNDLES:
        from fashionsearchnet.export.exporter import export_run

        root = tmp_path_factory.mktemp(f"bundle_{method}_{precision}")
        make_tiny_checkpoint(root / "run", method)
        export_run(root / "run", root / "bundle", precision=precision, method=method)
        _BUNDLES[key] = (root / "bundle", root / "run")
    return _BUNDLES[key]
