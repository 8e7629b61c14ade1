"""How well boxes localise: conv5-cell boxes -> image pixels, IoU with a true region mask's bounding box
(torch-free: numpy and OpenCV; the ``localisation`` figure of ``fsn eval`` and the localisation benchmarks).

Mapping used for the synthetic catalogue (mask labels 0 bg, 1 torso, 2 sleeve, 3 collar): collar -> collar,
sleeve -> sleeve, color / pattern -> torso (image-level colour and pattern describe the torso),
category -> whole garment (torso + sleeve + collar). Images whose true region is absent (a sleeveless garment
has no sleeve pixels) are left out of that attribute's mean. A region made of separate parts (two sleeves)
counts as found when the box matches the whole region or one part: the IoU is the best over the region's
bounding box and the bounding boxes of its 8-connected parts (the method boxes the largest component).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import DatasetError

MASKS = "masks"  # <dataset root>/masks/<image stem>.png: region label images (fsn synth writes them)

SYNTH_ATTRIBUTE_REGIONS: dict[str, tuple[int, ...]] = {
    "collar": (3,), "sleeve": (2,), "color": (1,), "pattern": (1,), "category": (1, 2, 3),
}
SYNTH_REGION_LABELS: dict[str, tuple[int, ...]] = {"collar": (3,), "sleeve": (2,), "torso": (1,)}


def cell_box_to_pixels(box: np.ndarray, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """Inclusive conv5-cell box [x0,y0,x1,y1] -> pixel box [x0,y0,x1,y1) (half-open) in an image of image_hw."""
    h, w = map_hw
    ih, iw = image_hw
    sx, sy = iw / w, ih / h
    return np.array([box[0] * sx, box[1] * sy, (box[2] + 1) * sx, (box[3] + 1) * sy], np.float64)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Half-open pixel bounding box of a boolean mask, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def truth_boxes(mask: np.ndarray) -> list[np.ndarray]:
    """Half-open boxes of a region: its whole bounding box, then each 8-connected part's (empty -> [])."""
    whole = mask_box(mask)
    if whole is None:
        return []
    n, _, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    parts = [np.array([x, y, x + w, y + h], np.float64) for x, y, w, h, _ in st[1:n]]
    return [whole] + (parts if len(parts) > 1 else [])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two half-open boxes [x0,y0,x1,y1)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mean_box_iou(boxes: np.ndarray, masks: list[np.ndarray], names: list[str], labels: dict[str, tuple[int, ...]],
                 map_hw: tuple[int, int]) -> dict[str, float | None]:
    """boxes (N, K, 4) in cells, masks N label images -> {name: mean IoU of box k with its region (see module doc)}."""
    sums = {n: [0.0, 0] for n in names}
    for i, m in enumerate(masks):
        for k, name in enumerate(names):
            if name not in labels:
                continue
            truths = truth_boxes(np.isin(m, labels[name]))
            if not truths:
                continue
            pix = cell_box_to_pixels(boxes[i, k], map_hw, m.shape[:2])
            iou = max(box_iou(pix, t) for t in truths)
            sums[name][0] += iou
            sums[name][1] += 1
    return {n: (s / c if c else None) for n, (s, c) in sums.items()}


def box_coverage(box: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the mask's pixels inside the half-open pixel box (1.0: the box holds the whole region)."""
    total = int(mask.sum())
    if total == 0:
        return 0.0
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), mask.shape[1]), min(int(np.ceil(box[3])), mask.shape[0])
    return float(mask[y0:y1, x0:x1].sum()) / total if x1 > x0 and y1 > y0 else 0.0


def mean_box_coverage(boxes: np.ndarray, masks: list[np.ndarray], names: list[str],
                      labels: dict[str, tuple[int, ...]], map_hw: tuple[int, int]) -> dict[str, float | None]:
    """Like :func:`mean_box_iou`, the mean fraction of the true region's pixels inside each box: IoU punishes a
    box that finds a small part (a collar trim) but is larger than it; coverage says whether the part is in it."""
    sums = {n: [0.0, 0] for n in names}
    for i, m in enumerate(masks):
        for k, name in enumerate(names):
            if name not in labels:
                continue
            region = np.isin(m, labels[name])
            if not region.any():
                continue
            sums[name][0] += box_coverage(cell_box_to_pixels(boxes[i, k], map_hw, m.shape[:2]), region)
            sums[name][1] += 1
    return {n: (s / c if c else None) for n, (s, c) in sums.items()}


def mask_path(dataset: Dataset, row: int) -> Path:
    """Where the region label image of dataset row ``row`` is: ``<root>/masks/<image stem>.png``."""
    return Path(dataset.root) / MASKS / (Path(dataset.images[row]).stem + ".png")


def has_masks(dataset: Dataset) -> bool:
    return (Path(dataset.root) / MASKS).is_dir()


def read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise DatasetError(f"{path}: cannot read the region mask; regenerate the catalogue with 'fsn synth' "
                           "(without --no-masks) or leave localisation out of --protocols")
    return m


def localisation(dataset: Dataset, boxes: np.ndarray, map_hw: tuple[int, int], rows: Sequence[int] | np.ndarray,
                 names: Sequence[str], attr_labels: dict[str, tuple[int, ...]] = SYNTH_ATTRIBUTE_REGIONS,
                 region_labels: dict[str, tuple[int, ...]] = SYNTH_REGION_LABELS,
                 region_names: Sequence[str] = ()) -> dict[str, float | int]:
    """The ``localisation`` figure of one method: ``{"<attribute>": mean box IoU, ..., "region:<name>": mean IoU
    of the region box, "n": images}`` over dataset ``rows`` (with masks).

    ``boxes`` (len(dataset), A+R, 4) inclusive cells of a ``map_hw`` map (attribute boxes, then region boxes, in
    the order of ``names`` and ``region_names``); IoU as :func:`mean_box_iou` (attributes without a mask region,
    and images where the region is absent, are left out; an attribute no image has is omitted).
    """
    rows = np.asarray(rows, np.int64)
    masks = [read_mask(mask_path(dataset, int(r))) for r in rows]
    names, region_names = list(names), list(region_names)
    out: dict[str, float | int] = {}
    attr = mean_box_iou(boxes[rows, :len(names)], masks, names, attr_labels, map_hw)
    out.update({k: round(v, 4) for k, v in attr.items() if v is not None})
    if region_names:
        reg = mean_box_iou(boxes[rows, len(names):len(names) + len(region_names)], masks, region_names,
                           region_labels, map_hw)
        out.update({f"region:{k}": round(v, 4) for k, v in reg.items() if v is not None})
    out["n"] = int(len(rows))
    return out
