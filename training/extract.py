"""Feature extraction through the PyTorch reference path: backbone -> runtime/roi.py boxes -> heads.

Also the image loading shared with training (decode + resize once to uint8, normalise per batch).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.preprocess import Preprocessing, read_image
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.roi_settings import RoiChoice, RoiSettings
from fashionsearchnet.training.model import FashionSearchNet

Progress = Callable[[int], None] | None


def load_resized(dataset: Dataset, rows: np.ndarray, pre: Preprocessing, progress: Progress = None) -> np.ndarray:
    """Decode and resize ``rows`` of a dataset to uint8 (N, S, S, 3) RGB (normalised later, per batch)."""
    out = np.empty((len(rows), pre.size, pre.size, 3), dtype=np.uint8)
    for j, i in enumerate(rows):
        out[j] = pre.resize(read_image(dataset.images[int(i)]))
        if progress:
            progress(1)
    return out


def to_tensor(batch_uint8: np.ndarray, pre: Preprocessing, device: str | torch.device) -> torch.Tensor:
    """uint8 (B,S,S,3) -> normalised float32 (B,3,S,S) on ``device`` (the same math as Preprocessing)."""
    return torch.from_numpy(pre.normalize(batch_uint8)).to(device)


def boxes_for(model: FashionSearchNet, aams: np.ndarray, region_maps: np.ndarray,
              settings: RoiSettings | None = None) -> np.ndarray:
    """(B, A+R, 4) boxes for ``heads``: AAM/region boxes (``settings``; None: the paper's 0.2, what training
    pools), or the whole map for the no_aam baseline."""
    b, a, h, w = aams.shape
    if model.method == "no_aam":
        return roi.full_boxes(b, a + region_maps.shape[1], h, w)
    if settings is None:
        return roi.all_boxes(aams, region_maps, model.schema)
    return roi.settings_boxes(aams, region_maps, model.schema, settings)


@torch.no_grad()
def extract_arrays(model: FashionSearchNet, images: np.ndarray, pre: Preprocessing, batch_size: int = 64,
                   device: str = "cpu", progress: Progress = None,
                   roi_choice: RoiChoice | None = None) -> dict[str, np.ndarray]:
    """uint8 (N,S,S,3) -> attr_reps (N,A,D), region_reps (N,P,D), probs (N,sumC), boxes (N,A+R,4) float32.

    ``roi_choice`` (a checkpoint's ``Checkpoint.roi_choice``; None: the paper's 0.2 for both): the heads pool its
    ``heads`` boxes; ``boxes`` are its ``display`` boxes, as the runtime's ``Features`` (the same ROI code)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"attr_reps": [], "region_reps": [], "probs": [], "boxes": []}
    for s in range(0, len(images), batch_size):
        x = to_tensor(images[s:s + batch_size], pre, device)
        conv5, probs, aams, region_maps = model.backbone(x)
        a_np, r_np = aams.cpu().numpy(), region_maps.cpu().numpy()
        boxes = boxes_for(model, a_np, r_np, None if roi_choice is None else roi_choice.heads)
        shown = boxes if roi_choice is None or roi_choice.same else boxes_for(model, a_np, r_np, roi_choice.display)
        attr_reps, region_reps = model.heads(conv5, torch.from_numpy(boxes).to(device))
        parts["attr_reps"].append(attr_reps.cpu().numpy())
        parts["region_reps"].append(region_reps.cpu().numpy())
        parts["probs"].append(probs.cpu().numpy())
        parts["boxes"].append(shown)
        if progress:
            progress(len(x))
    if not parts["probs"]:
        a, p, d = model.num_attributes, model.num_pairs, model.preset.rep_dim
        return {"attr_reps": np.zeros((0, a, d), np.float32), "region_reps": np.zeros((0, p, d), np.float32),
                "probs": np.zeros((0, sum(model.num_classes)), np.float32),
                "boxes": np.zeros((0, a + len(model.schema.regions), 4), np.float32)}
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


def extract(model: FashionSearchNet, dataset: Dataset, rows: np.ndarray | None = None, batch_size: int = 64,
            device: str = "cpu", progress: Progress = None,
            roi_choice: RoiChoice | None = None) -> dict[str, np.ndarray]:
    """Features of dataset ``rows`` (default: all) via the PyTorch reference path; see :func:`extract_arrays`."""
    rows = np.arange(len(dataset)) if rows is None else np.asarray(rows, np.int64)
    pre = Preprocessing(model.preset.input_size)
    out: dict[str, list[np.ndarray]] = {}
    chunk = 1024  # bound memory: decode a chunk, extract it
    for s in range(0, max(len(rows), 1), chunk):
        part = rows[s:s + chunk]
        feats = extract_arrays(model, load_resized(dataset, part, pre), pre, batch_size, device, progress, roi_choice)
        for k, v in feats.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}
