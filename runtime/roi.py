"""The ROI step between the two graphs (numpy + OpenCV, no torch; training calls the same code).

Paper section 3.2: threshold a map at 20% of its maximum, keep the largest 8-connected component, take its
bounding box. Section 3.4: the same on accumulated region maps, with the torso's mask minus the collar and
sleeve masks. Boxes are ``[x0, y0, x1, y1]`` inclusive cell indices in conv5 coordinates, float32.
A map whose maximum is <= 0 (or whose mask ends up empty) gives the whole map.

Speed: all maps of a batch are stacked vertically (one zero row between maps) into one image, so a single
``cv2.connectedComponentsWithStats`` call labels every map; the result is identical to one call per map
(components cannot cross the zero rows, and labels keep raster order, so ties between equally large
components go to the one met first in raster order in both cases; ``tests/test_roi_boxes.py`` checks the
batched path against :func:`boxes_reference`).
"""
from __future__ import annotations

import cv2
import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError

DEFAULT_THRESH = 0.2


def _check_maps(maps: np.ndarray, name: str) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 4 or maps.shape[2] < 1 or maps.shape[3] < 1:
        raise UsageError(f"{name}: expected a (B, n, h, w) array, got shape {maps.shape}")
    return maps.astype(np.float32, copy=False)


def full_boxes(batch: int, n: int, h: int, w: int) -> np.ndarray:
    """(batch, n, 4) boxes covering the whole h x w map (the no_aam baseline)."""
    box = np.array([0.0, 0.0, w - 1.0, h - 1.0], dtype=np.float32)
    return np.broadcast_to(box, (batch, n, 4)).copy()


def threshold_masks(maps: np.ndarray, thresh: float = DEFAULT_THRESH) -> np.ndarray:
    """(..., h, w) -> bool masks of cells strictly above ``thresh`` x the map's max (all False if max <= 0)."""
    mx = maps.max(axis=(-2, -1), keepdims=True)
    return (maps > thresh * mx) & (mx > 0)


def largest_component_boxes(masks: np.ndarray) -> np.ndarray:
    """(M, h, w) bool -> (M, 4) float32 box of each mask's largest 8-connected component (whole map if empty)."""
    m, h, w = masks.shape
    out = np.empty((m, 4), dtype=np.float32)
    out[:] = (0.0, 0.0, w - 1.0, h - 1.0)
    if m == 0:
        return out
    # one tall image: map i occupies rows i*(h+1) .. i*(h+1)+h-1, a zero row after each map
    tall = np.zeros((m, h + 1, w), dtype=np.uint8)
    tall[:, :h, :] = masks
    n_lab, _, stats, _ = cv2.connectedComponentsWithStats(tall.reshape(m * (h + 1), w), connectivity=8,
                                                          ltype=cv2.CV_32S)
    if n_lab <= 1:
        return out
    st = stats[1:]
    labels = np.arange(1, n_lab)
    tile = st[:, cv2.CC_STAT_TOP] // (h + 1)
    area = st[:, cv2.CC_STAT_AREA]
    order = np.lexsort((labels, -area, tile))  # by tile, then largest area, then first in raster order
    tile_sorted = tile[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = tile_sorted[1:] != tile_sorted[:-1]
    best = order[first]
    t = tile[best]
    x0 = st[best, cv2.CC_STAT_LEFT]
    y0 = st[best, cv2.CC_STAT_TOP] - t * (h + 1)
    out[t, 0] = x0
    out[t, 1] = y0
    out[t, 2] = x0 + st[best, cv2.CC_STAT_WIDTH] - 1
    out[t, 3] = y0 + st[best, cv2.CC_STAT_HEIGHT] - 1
    return out


def attribute_boxes(aams: np.ndarray, thresh: float = DEFAULT_THRESH) -> np.ndarray:
    """(B, A, h, w) attribute activation maps -> (B, A, 4) float32 boxes (section 3.2)."""
    aams = _check_maps(aams, "aams")
    b, a, h, w = aams.shape
    masks = threshold_masks(aams, thresh)
    return largest_component_boxes(masks.reshape(b * a, h, w)).reshape(b, a, 4)


def region_masks(region_maps: np.ndarray, schema: Schema, thresh: float = DEFAULT_THRESH) -> np.ndarray:
    """(B, R, h, w) region maps -> (B, R, h, w) bool masks, each region minus its ``subtract`` regions' masks."""
    region_maps = _check_maps(region_maps, "region_maps")
    if region_maps.shape[1] != len(schema.regions):
        raise UsageError(
            f"region_maps: {region_maps.shape[1]} maps but the schema defines {len(schema.regions)} regions "
            f"({', '.join(r.name for r in schema.regions)}); pass one map per region in schema order"
        )
    raw = threshold_masks(region_maps, thresh)
    masks = raw.copy()
    names = [r.name for r in schema.regions]
    for i, reg in enumerate(schema.regions):
        for sub in reg.subtract:
            masks[:, i] &= ~raw[:, names.index(sub)]
    return masks


def region_boxes(region_maps: np.ndarray, schema: Schema, thresh: float = DEFAULT_THRESH) -> np.ndarray:
    """(B, R, h, w) region maps -> (B, R, 4) float32 boxes (section 3.4; torso minus collar and sleeve)."""
    masks = region_masks(region_maps, schema, thresh)
    b, r, h, w = masks.shape
    return largest_component_boxes(masks.reshape(b * r, h, w)).reshape(b, r, 4)


def all_boxes(aams: np.ndarray, region_maps: np.ndarray, schema: Schema, thresh: float = DEFAULT_THRESH) -> np.ndarray:
    """(B, A+R, 4): attribute boxes then region boxes, in one labelling call (the ``heads`` input)."""
    aams = _check_maps(aams, "aams")
    b, a, h, w = aams.shape
    rmask = region_masks(region_maps, schema, thresh)
    masks = np.concatenate([threshold_masks(aams, thresh), rmask], axis=1)
    return largest_component_boxes(masks.reshape(-1, h, w)).reshape(b, masks.shape[1], 4)


def boxes_reference(masks: np.ndarray) -> np.ndarray:
    """Slow per-map reference of :func:`largest_component_boxes` (one OpenCV call per map; for tests)."""
    m, h, w = masks.shape
    out = np.empty((m, 4), dtype=np.float32)
    for i in range(m):
        if not masks[i].any():
            out[i] = (0, 0, w - 1, h - 1)
            continue
        n, _, st, _ = cv2.connectedComponentsWithStats(masks[i].astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        j = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))  # argmax: first label among ties
        x, y, ww, hh = st[j, :4]
        out[i] = (x, y, x + ww - 1, y + hh - 1)
    return out
