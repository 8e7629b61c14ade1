"""Calibration step 1, the ROI step (training/calibrate.py's module doc): per map (attribute AAM, region map) the
threshold and one CAM upsampling factor with the best mean box IoU against the synthetic catalogue's masks
(``masks/<stem>.png``) on the validation rows."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.roi_settings import DEFAULT_THRESHOLD, RoiSettings
from fashionsearchnet.training.localisation import SYNTH_ATTRIBUTE_REGIONS, SYNTH_REGION_LABELS, truth_boxes

log = logging.getLogger(__name__)

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)
UPSAMPLES = (1, 2, 4)
UPSAMPLE_MIN_GAIN = 0.005  # mean IoU a larger upsampling factor must add over the smaller one chosen so far


def load_masks(dataset: Dataset, rows: np.ndarray) -> list[np.ndarray] | None:
    """The synthetic catalogue's region label images of ``rows`` (``masks/<stem>.png`` beside ``images/``), or
    None when the dataset has none."""
    out = []
    for i in rows:
        p = Path(dataset.images[int(i)])
        m = cv2.imread(str(p.parent.parent / "masks" / f"{p.stem}.png"), cv2.IMREAD_UNCHANGED)
        if m is None:
            return None
        out.append(m)
    return out


# ---- 1. thresholds -----------------------------------------------------------------------------------
def map_labels(schema) -> list[tuple[int, ...] | None]:
    """Mask labels of each ROI map (attributes, then regions), None where the synthetic masks say nothing."""
    return ([SYNTH_ATTRIBUTE_REGIONS.get(a) for a in schema.names]
            + [SYNTH_REGION_LABELS.get(r.name) for r in schema.regions])


def truth_table(masks: Sequence[np.ndarray], labels: Sequence[tuple[int, ...] | None]) -> list[np.ndarray]:
    """truths[k]: (N, T, 4) half-open pixel boxes of map k's region in each image (whole region, then its parts;
    NaN rows pad, all NaN where the region is absent or the map has no mask label)."""
    out = []
    for lab in labels:
        col = [np.array(truth_boxes(np.isin(m, lab)) if lab is not None else [], np.float64).reshape(-1, 4)
               for m in masks]
        t = max([len(c) for c in col] + [1])
        arr = np.full((len(masks), t, 4), np.nan)
        for i, c in enumerate(col):
            arr[i, :len(c)] = c
        out.append(arr)
    return out


def box_ious(boxes: np.ndarray, truths: np.ndarray, map_hw: tuple[int, int], image_hw: np.ndarray) -> np.ndarray:
    """(N,) best IoU of each image's cell box (N, 4) with its truth boxes (N, T, 4) (NaN where the region is
    absent); cells map to pixels as ``training.localisation.cell_box_to_pixels``; ``image_hw`` (N, 2)."""
    h, w = map_hw
    sx, sy = image_hw[:, 1] / w, image_hw[:, 0] / h
    p = np.stack([boxes[:, 0] * sx, boxes[:, 1] * sy, (boxes[:, 2] + 1) * sx, (boxes[:, 3] + 1) * sy], 1)[:, None]
    iw = np.clip(np.minimum(p[..., 2], truths[..., 2]) - np.maximum(p[..., 0], truths[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], truths[..., 3]) - np.maximum(p[..., 1], truths[..., 1]), 0, None)
    inter = iw * ih
    union = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1]) + \
        (truths[..., 2] - truths[..., 0]) * (truths[..., 3] - truths[..., 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, np.where(np.isnan(union), np.nan, 0.0))
    out = np.full(len(boxes), np.nan)
    present = ~np.isnan(iou).all(1)
    out[present] = np.nanmax(iou[present], axis=1)
    return out


def map_ious(aams: np.ndarray, region_maps: np.ndarray, schema, thresh: np.ndarray, upsample: int,
             truths: list[np.ndarray], image_hw: np.ndarray) -> np.ndarray:
    """(A+R,) mean IoU per map (NaN for maps without truth) of the boxes at ``thresh`` (A+R,) and ``upsample``."""
    boxes = roi.all_boxes(aams, region_maps, schema, thresh, upsample=upsample)
    hw = aams.shape[-2:]
    out = np.full(boxes.shape[1], np.nan)
    for k in range(boxes.shape[1]):
        if not np.isnan(truths[k]).all():
            out[k] = np.nanmean(box_ious(boxes[:, k], truths[k], hw, image_hw))
    return out


def choose_roi(aams: np.ndarray, region_maps: np.ndarray, schema, masks: Sequence[np.ndarray],
               thresholds: Sequence[float] = THRESHOLDS,
               upsamples: Sequence[int] = UPSAMPLES) -> tuple[RoiSettings, dict[str, Any]]:
    """The per-map thresholds and the upsampling factor with the best mean validation IoU (module doc)."""
    names = list(schema.names) + [r.name for r in schema.regions]
    A = len(schema.attributes)
    truths = truth_table(masks, map_labels(schema))
    image_hw = np.array([m.shape[:2] for m in masks], np.float64)
    measured = [k for k in range(len(names)) if not np.isnan(truths[k]).all()]
    dependent = [A + i for i, r in enumerate(schema.regions) if r.subtract]
    default_iou = map_ious(aams, region_maps, schema, np.full(len(names), DEFAULT_THRESHOLD, np.float32), 1,
                           truths, image_hw)
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for k in upsamples:
        table = np.stack([map_ious(aams, region_maps, schema, np.full(len(names), t, np.float32), k, truths,
                                   image_hw) for t in thresholds])  # (T, A+R)
        chosen = np.full(len(names), DEFAULT_THRESHOLD, np.float32)
        for m in measured:
            if m not in dependent:
                chosen[m] = thresholds[int(np.nanargmax(table[:, m]))]
        for m in dependent:  # after the regions it subtracts
            if m in measured:
                col = []
                for t in thresholds:
                    vec = chosen.copy()
                    vec[m] = t
                    col.append(map_ious(aams, region_maps, schema, vec, k, truths, image_hw)[m])
                chosen[m] = thresholds[int(np.nanargmax(col))]
        ious = map_ious(aams, region_maps, schema, chosen, k, truths, image_hw)
        mean = float(np.nanmean(ious[measured])) if measured else 0.0
        log.info("ROI upsample %dx: mean validation IoU %.3f", k, mean)
        if best is None or mean > best[0] + UPSAMPLE_MIN_GAIN:  # a finer map must earn its cost
            best = (mean, k, chosen, ious)
    assert best is not None
    mean, k, chosen, ious = best
    label = [f"{n}" for n in schema.names] + [f"region:{r.name}" for r in schema.regions]  # report keys
    settings = RoiSettings({names[m]: round(float(chosen[m]), 4) for m in measured if m < A},
                           {names[m]: round(float(chosen[m]), 4) for m in measured if m >= A}, int(k))
    report = {"upsample": int(k), "thresholds": settings.to_dict()["thresholds"],
              "iou": {label[m]: round(float(ious[m]), 4) for m in measured},
              "iou_default": {label[m]: round(float(default_iou[m]), 4) for m in measured},
              "mean_iou": round(mean, 4),
              "mean_iou_default": round(float(np.nanmean(default_iou[measured])), 4) if measured else None}
    return settings, report
