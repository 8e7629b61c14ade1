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
At batch 1 (8 maps of 15x15, ~15 components) fixed costs dominate, so :func:`all_boxes` thresholds every map in
one pass over a (B, A+R, h*w) view and the component statistics are reduced in a plain loop over the few
component rows when there are at most ``_LOOP_MAX`` of them (numpy's per-call overhead of the vectorised
reduction exceeds the loop there); both reductions pick the same component (largest area, first label on ties).
Labels are 16-bit whenever the provisional-label bound fits (up to ~65k cells x 2): OpenCV labels 16-bit images
with its serial algorithm and 32-bit ones in parallel when it has several threads; on the 2-core machine the
parallel hand-off made the call 2x slower at batch 1 (21 vs 11 us back to back, 69 vs 34 us after other work).
The statistics (and so the boxes) are the same; the tests compare against one 32-bit call per map.
"""
from __future__ import annotations

import cv2
import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.runtime.roi_settings import RoiChoice, RoiSettings

DEFAULT_THRESH = 0.2
SubtractPlan = tuple[tuple[tuple[int, int], ...], bool]
_LOOP_MAX = 256  # component rows up to which the plain loop beats the vectorised reduction (measured)


def _check_maps(maps: np.ndarray, name: str) -> np.ndarray:
    if type(maps) is np.ndarray and maps.dtype == np.float32 and maps.ndim == 4 and maps.size:
        return maps  # the usual case (a backend's output), without numpy calls
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
    if m == 0:
        return np.empty((0, 4), np.float32)
    # one tall image: map i occupies rows i*(h+1) .. i*(h+1)+h-1, a zero row after each map
    tall = np.zeros((m, h + 1, w), dtype=np.uint8)
    tall[:, :h, :] = masks
    return _label_boxes(tall, h, w)


def _label_boxes(tall: np.ndarray, h: int, w: int) -> np.ndarray:
    """(M, h+1, w) uint8 stacked masks (zero row after each) -> (M, 4) float32 boxes, one labelling call."""
    m = tall.shape[0]
    rows = m * (h + 1)
    # 16-bit labels whenever they fit: OpenCV then runs its serial labelling, whose results equal the 32-bit
    # (parallel when OpenCV has > 1 thread) one; the parallel path costs a thread hand-off per call (module doc)
    ltype = cv2.CV_16U if ((rows + 1) // 2) * ((w + 1) // 2) + 1 < 65535 else cv2.CV_32S
    n_lab, _, stats, _ = cv2.connectedComponentsWithStats(tall.reshape(rows, w), connectivity=8, ltype=ltype)
    if n_lab <= _LOOP_MAX:
        return _boxes_loop(stats, m, h, w)
    out = np.empty((m, 4), dtype=np.float32)
    out[:] = (0.0, 0.0, w - 1.0, h - 1.0)
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


def _boxes_loop(stats: np.ndarray, m: int, h: int, w: int) -> np.ndarray:
    """The same reduction as the vectorised path of :func:`_label_boxes`, as a loop over few component rows."""
    rows = stats.tolist()  # left, top, width, height, area per label (label 0: background)
    whole = [0.0, 0.0, w - 1.0, h - 1.0]
    boxes = [whole] * m
    areas = [0] * m
    for lab in range(1, len(rows)):
        x, y, ww, hh, area = rows[lab]
        tile = y // (h + 1)
        if area > areas[tile]:  # strictly larger: the first label keeps a tie
            areas[tile] = area
            y -= tile * (h + 1)
            boxes[tile] = [x, y, x + ww - 1, y + hh - 1]
    return np.array(boxes, dtype=np.float32)


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


def upsample_matrix(n: int, k: int) -> np.ndarray:
    """(n*k, n) float32 bilinear interpolation matrix: OpenCV's ``INTER_LINEAR`` resize by an integer factor
    ``k`` (pixel centres aligned, border replicated), as a matrix so that a stack of maps is two products."""
    u = np.arange(n * k, dtype=np.float64)
    src = np.clip((u + 0.5) / k - 0.5, 0.0, n - 1.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = src - i0
    m = np.zeros((n * k, n), np.float64)
    m[np.arange(n * k), i0] += 1.0 - frac
    m[np.arange(n * k), i1] += frac
    return m.astype(np.float32)


def upsample_maps(maps: np.ndarray, k: int) -> np.ndarray:
    """(..., h, w) -> (..., h*k, w*k) float32, bilinear (:func:`upsample_matrix`); k = 1 returns ``maps``."""
    if k == 1:
        return maps
    h, w = maps.shape[-2:]
    return upsample_matrix(h, k) @ maps.astype(np.float32, copy=False) @ upsample_matrix(w, k).T


def cells_from_upsampled(boxes: np.ndarray, k: int) -> np.ndarray:
    """Inclusive boxes in a k x upsampled map -> conv5 cell coordinates (floats): upsampled pixel u spans
    [u/k, (u+1)/k) of the map in cell widths, so [u0, u1] -> [u0/k, (u1+1)/k - 1] (k = 1: unchanged; the
    whole upsampled map gives the whole map)."""
    if k == 1:
        return boxes
    out = boxes.astype(np.float32, copy=True)
    out[..., :2] /= k
    out[..., 2:] = (out[..., 2:] + 1.0) / k - 1.0
    return out


def all_boxes(aams: np.ndarray, region_maps: np.ndarray, schema: Schema, thresh: float | np.ndarray = DEFAULT_THRESH,
              subtract: SubtractPlan | None = None, upsample: int = 1) -> np.ndarray:
    """(B, A+R, 4): attribute boxes then region boxes, in one labelling call (the ``heads`` input).

    ``thresh``: one fraction for every map, or (A+R,) per map (attributes, then regions: ``RoiSettings.vector``).
    ``upsample`` k > 1: the maps are upsampled k x (:func:`upsample_maps`) before thresholding and the boxes are
    mapped back to cell coordinates (:func:`cells_from_upsampled`, fractional). ``subtract``: :func:`subtract_plan`
    of ``schema``, computed once by callers that run many batches (the extractor); None computes it here.
    """
    aams = _check_maps(aams, "aams")
    region_maps = _check_maps(region_maps, "region_maps")
    b, a, h, w = aams.shape
    r = len(schema.regions)
    if region_maps.shape != (b, r, h, w):
        if region_maps.ndim == 4 and region_maps.shape[1] != r:
            region_masks(region_maps, schema, thresh)  # raises the schema mismatch error
        raise UsageError(f"region_maps: shape {region_maps.shape} does not match aams {aams.shape} "
                         f"(expected ({b}, {r}, {h}, {w})); pass the backbone's outputs of one batch")
    k = a + r
    if upsample != 1:
        if isinstance(upsample, bool) or int(upsample) != upsample or upsample < 1:
            raise UsageError(f"upsample {upsample!r}: must be a whole number >= 1")
        upsample = int(upsample)
        maps = upsample_maps(np.concatenate([aams, region_maps], axis=1), upsample)
        h, w = h * upsample, w * upsample
        flat = maps.reshape(b, k, h * w)
    else:
        flat = np.concatenate([aams.reshape(b, a, h * w), region_maps.reshape(b, r, h * w)], axis=1)
    thr = flat.max(axis=2, keepdims=True)
    if np.ndim(thresh) == 0:
        thr *= thresh  # the same float32 product as threshold_masks
        outside = not 0.0 <= thresh <= 1.0
    else:
        vec = np.asarray(thresh, np.float32)
        if vec.shape != (k,):
            raise UsageError(f"thresh: {vec.shape[0] if vec.ndim == 1 else vec.shape} thresholds for {k} maps "
                             f"({a} attributes + {r} regions); give one per map or a single number")
        thr *= vec.reshape(1, k, 1)
        outside = bool(((vec < 0) | (vec > 1)).any())
        if outside:
            raise UsageError("thresh: per-map thresholds must lie in [0, 1]")
    tall = np.zeros((b, k, h + 1, w), dtype=np.uint8)  # the stacked labelling image (zero row after each map)
    masks = tall.view(np.bool_)[:, :, :h, :]
    np.greater(flat.reshape(b, k, h, w), thr.reshape(b, k, 1, 1), out=masks)
    if outside:  # for 0 <= thresh <= 1 a map with max <= 0 has no cell above thresh * max
        masks &= (thr > 0).reshape(b, k, 1, 1) if thresh > 0 else (thr < 0).reshape(b, k, 1, 1)
    sub, copy = subtract if subtract is not None else subtract_plan(schema)
    if sub:
        src = masks[:, a:].copy() if copy else masks[:, a:]
        for i, j in sub:  # region i minus region j's raw mask (region_masks); bool x > y == x & ~y
            np.greater(masks[:, a + i], src[:, j], out=masks[:, a + i])
    boxes = _label_boxes(tall.reshape(b * k, h + 1, w), h, w).reshape(b, k, 4)
    return cells_from_upsampled(boxes, upsample)


def settings_boxes(aams: np.ndarray, region_maps: np.ndarray, schema: Schema, settings: RoiSettings,
                   subtract: SubtractPlan | None = None) -> np.ndarray:
    """:func:`all_boxes` with a :class:`~fashionsearchnet.runtime.roi_settings.RoiSettings` (the paper's single
    threshold takes the fast path)."""
    thresh = settings.default if settings.is_default else settings.vector(schema)
    return all_boxes(aams, region_maps, schema, thresh, subtract, int(settings.upsample))


def choice_boxes(aams: np.ndarray, region_maps: np.ndarray, schema: Schema, choice: RoiChoice,
                 subtract: SubtractPlan | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(heads boxes, display boxes) of a :class:`~fashionsearchnet.runtime.roi_settings.RoiChoice`: one ROI step
    when both are the same settings. Every path (runtime backends, the PyTorch reference) calls this."""
    heads = settings_boxes(aams, region_maps, schema, choice.heads, subtract)
    if choice.same:
        return heads, heads
    return heads, settings_boxes(aams, region_maps, schema, choice.display, subtract)


def subtract_plan(schema: Schema) -> SubtractPlan:
    """(region index, subtracted region index) pairs in schema order, and whether a subtracted region is itself
    changed by a subtraction (then the raw masks are copied first)."""
    names = [reg.name for reg in schema.regions]
    pairs = tuple((i, names.index(sub)) for i, reg in enumerate(schema.regions) for sub in reg.subtract)
    return pairs, bool({i for i, _ in pairs} & {j for _, j in pairs})


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
