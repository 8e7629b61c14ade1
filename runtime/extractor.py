"""FeatureExtractor: images -> FashionSearchNet features through a bundle, without torch.

Per batch: decode + preprocess (host) -> ``backbone`` graph -> ROI step on the host (``runtime/roi.py``: only
the small AAM / region-map tensors cross from the device) -> ``heads`` graph on the kept ``conv5`` ->
global representation (eq. 7, set 0) in numpy. Per-stage wall times (ms) of the last call are in
``last_timings`` (``preprocess``, ``backbone``, ``roi``, ``heads``, ``global``) for benchmarks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from fashionsearchnet.errors import UsageError
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.backends import Backend, select_backend
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.runtime.images import ImageInput, load_rgb

log = logging.getLogger(__name__)

STAGES = ("preprocess", "backbone", "roi", "heads", "global")


@dataclass
class Features:
    """Features of N images (numpy). Boxes are inclusive conv5 cells [x0, y0, x1, y1] (fractional with an upsampled
    ROI step); ``box_scale`` (N, 2) = (input width / map width, input height / map height) maps them to input
    pixels (see :meth:`pixel_boxes`). ``attr_boxes`` / ``region_boxes`` are the bundle's display boxes (what a
    shopper sees, what localisation measures); the heads may have pooled others (``RoiChoice.heads``)."""

    attr_reps: np.ndarray  # (N, A, D)
    region_reps: np.ndarray  # (N, P, D), P = len(schema.region_pairs)
    probs: np.ndarray  # (N, sum C_a)
    predicted: list[dict[str, tuple[str, float]]]  # per image {attr: (value, confidence)}
    attr_boxes: np.ndarray  # (N, A, 4)
    region_boxes: np.ndarray  # (N, R, 4)
    box_scale: np.ndarray  # (N, 2)
    aams: np.ndarray  # (N, A, h, w)
    region_maps: np.ndarray  # (N, R, h, w)
    global_reps: np.ndarray  # (N, G): eq. 7 with set 0 (no manipulation)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.attr_reps.shape[0])

    def pixel_boxes(self, which: str = "attr") -> np.ndarray:
        """Boxes in input-image pixels, [x0, y0, x1, y1) half-open: cell i spans [i*s, (i+1)*s)."""
        b = self.attr_boxes if which == "attr" else self.region_boxes
        s = np.concatenate([self.box_scale, self.box_scale], axis=1)[:, None, :]
        return (b + np.array([0, 0, 1, 1], np.float32)) * s

    def to_table(self) -> FeatureTable:
        """The features a search reads (attribute and region representations, class probabilities)."""
        return FeatureTable(self.attr_reps, self.region_reps, self.probs)

    def take(self, i: int) -> "Features":
        """The features of image ``i`` alone (a batch of one; the arrays are views)."""
        sl = slice(i, i + 1)
        return Features(**{f.name: getattr(self, f.name)[sl] for f in fields(self) if f.name != "timings_ms"},
                        timings_ms=dict(self.timings_ms))

    @classmethod
    def concat(cls, parts: Sequence["Features"]) -> "Features":
        """The features of several batches, in order (arrays concatenated, per-image lists joined)."""
        if len(parts) == 1:
            return parts[0]

        def join(name: str):
            first = getattr(parts[0], name)
            if isinstance(first, list):
                return [x for p in parts for x in getattr(p, name)]
            return np.concatenate([getattr(p, name) for p in parts], 0)
        return cls(**{f.name: join(f.name) for f in fields(cls) if f.name != "timings_ms"},
                   timings_ms=dict(parts[-1].timings_ms))


class FeatureExtractor:
    """``with FeatureExtractor(bundle_path, backend="auto") as fx: feats = fx.extract(images)``."""

    def __init__(self, bundle: str | Path | Bundle, backend: str | Backend = "auto", threads: int | None = None,
                 max_batch: int | None = None, opt_batch: int | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self.backend = backend if isinstance(backend, Backend) else select_backend(
            backend, self.bundle, threads=threads, max_batch=max_batch, opt_batch=opt_batch)
        self.schema = self.bundle.schema
        self.pre = self.bundle.preprocessing
        self.roi = self.bundle.roi_choice  # heads boxes and display boxes (runtime/roi_settings.py)
        self.thresh = self.roi.heads.default
        self._subtract = roi.subtract_plan(self.schema)  # once, not per batch (the ROI step is cold at batch 1)
        self.last_timings: dict[str, float] = {}

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def __enter__(self) -> "FeatureExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def boxes(self, aams: np.ndarray, region_maps: np.ndarray) -> np.ndarray:
        """The ROI step: (B, A+R, 4) boxes the heads pool (whole map for every box with method ``no_aam``)."""
        return self.both_boxes(aams, region_maps)[0]

    def both_boxes(self, aams: np.ndarray, region_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(heads boxes, display boxes), each (B, A+R, 4): the bundle's ROI choice (``roi.choice_boxes``)."""
        b, a, h, w = aams.shape
        if self.bundle.method == "no_aam":
            full = roi.full_boxes(b, a + region_maps.shape[1], h, w)
            return full, full
        return roi.choice_boxes(aams, region_maps, self.schema, self.roi, self._subtract)

    def run_batch(self, batch: np.ndarray, t: dict[str, float]) -> dict[str, np.ndarray]:
        """Preprocessed (B,3,S,S) float32 -> every output, adding stage times (ms) to ``t``."""
        t0 = time.perf_counter()
        bb = self.backend.backbone(batch)
        t1 = time.perf_counter()
        boxes, shown = self.both_boxes(bb["aams"], bb["region_maps"])
        t2 = time.perf_counter()
        hd = self.backend.heads(boxes)
        t3 = time.perf_counter()
        g = global_representation(hd["attr_reps"], self.bundle.params.lam, self.bundle.params.W, 0)
        t4 = time.perf_counter()
        for k, dt in zip(STAGES[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[k] = t.get(k, 0.0) + dt * 1e3
        return {**bb, **hd, "boxes": shown, "heads_boxes": boxes, "global_reps": g}

    def preprocess(self, images: Sequence[ImageInput], offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Inputs -> (B,3,S,S) float32 and image sizes (B,2) = (width, height)."""
        x = np.empty((len(images), 3, self.pre.size, self.pre.size), np.float32)
        scale = np.empty((len(images), 2), np.float32)
        for i, item in enumerate(images):
            rgb = load_rgb(item, offset + i)
            x[i] = self.pre(rgb)
            scale[i] = (rgb.shape[1], rgb.shape[0])
        return x, scale

    def prepare(self, image: ImageInput) -> tuple[np.ndarray, np.ndarray]:
        """One input -> its preprocessed (3,S,S) float32 and (width, height): what :meth:`extract_prepared`
        batches (the service prepares each upload in its own request thread)."""
        x, size = self.preprocess([image])
        return x[0], size[0]

    def extract_prepared(self, x: np.ndarray, size: np.ndarray, t: dict[str, float] | None = None) -> Features:
        """Features of one batch from preprocessed (B,3,S,S) float32 and image sizes (B,2) = (width, height):
        one model run. Stage times (ms) are added to ``t``."""
        t = {} if t is None else t
        out = self.run_batch(np.ascontiguousarray(x, np.float32), t)
        h, w = out["aams"].shape[-2:]
        A = len(self.schema.attributes)
        return Features(
            attr_reps=out["attr_reps"], region_reps=out["region_reps"], probs=out["probs"],
            predicted=self.schema.predicted_values(out["probs"]),
            attr_boxes=out["boxes"][:, :A], region_boxes=out["boxes"][:, A:],
            box_scale=np.asarray(size, np.float32) / np.array([w, h], np.float32),
            aams=out["aams"], region_maps=out["region_maps"], global_reps=out["global_reps"],
        )

    def extract(self, images: ImageInput | Sequence[ImageInput], batch_size: int = 32,
                progress=None) -> Features:
        """Features of every image (paths, bytes or uint8 arrays; a single one is accepted too)."""
        if isinstance(images, (str, Path, bytes, bytearray, memoryview)) or (
                isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim in (2, 3)):
            images = [images]
        images = list(images)
        if not images:
            raise UsageError("extract: no images given; pass a list of paths, bytes or uint8 arrays")
        if batch_size < 1:
            raise UsageError(f"batch_size={batch_size}: must be >= 1")
        t: dict[str, float] = {}
        parts = []
        for s in range(0, len(images), batch_size):
            chunk = images[s:s + batch_size]
            t0 = time.perf_counter()
            x, size = self.preprocess(chunk, s)
            t["preprocess"] = t.get("preprocess", 0.0) + (time.perf_counter() - t0) * 1e3
            parts.append(self.extract_prepared(x, size, t))
            if progress is not None:
                progress(len(chunk))
        self.last_timings = {k: t.get(k, 0.0) for k in STAGES}
        f = Features.concat(parts)
        f.timings_ms = dict(self.last_timings)
        return f
