"""``--explain``: the query with its attribute boxes beside the result thumbnails, in one picture (OpenCV).

The drawing pieces (:func:`fit`, :func:`draw_query`, :func:`box_color`) are also what ``fsn demo``'s report uses."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from fashionsearchnet.data.preprocess import read_image
from fashionsearchnet.errors import ImageError, UsageError

_COLORS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60)]


def box_color(i: int) -> tuple[int, int, int]:
    """The RGB colour :func:`draw_query` gives box ``i``."""
    return _COLORS[i % len(_COLORS)]


def fit(rgb: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` scaled to fit a ``size`` x ``size`` white square, centred."""
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    img = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
    return canvas


def draw_query(rgb: np.ndarray, boxes: np.ndarray, labels: Sequence[str], size: int = 320,
               widths: Sequence[int] | None = None, captions: bool = True, stagger: int = 0) -> np.ndarray:
    """Query image (RGB) with one box per attribute; ``boxes`` (A, 4) are fractions [x0, y0, x1, y1) of the image.

    ``widths``: line width per box (default 2); ``captions``: write each label in the picture (else the caller shows
    a legend in :func:`box_color`); ``stagger``: inset box ``i`` by ``stagger * (i % 3)`` px so equal boxes stay
    visible."""
    canvas = fit(rgb, size)
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    ox, oy = (size - round(w * s)) // 2, (size - round(h * s)) // 2
    for i, (b, text) in enumerate(zip(boxes, labels)):
        c = box_color(i)
        x0, y0 = int(ox + b[0] * w * s), int(oy + b[1] * h * s)
        x1, y1 = int(ox + b[2] * w * s) - 1, int(oy + b[3] * h * s) - 1
        d = stagger * (i % 3)
        if d:
            x0, y0, x1, y1 = x0 + d, y0 + d, max(x0 + d, x1 - d), max(y0 + d, y1 - d)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), c, 2 if widths is None else int(widths[i]))
        if captions:
            cv2.putText(canvas, text, (x0 + 3, max(12, y0 + 12 + 12 * (i % 2))), cv2.FONT_HERSHEY_SIMPLEX, 0.4, c,
                        1, cv2.LINE_AA)
    return canvas


def explain_image(query_rgb: np.ndarray, query_boxes: np.ndarray, query_labels: Sequence[str],
                  results: Sequence[tuple[str, str, float]], title: str, out: str | Path, thumb: int = 160) -> Path:
    """Write query + results (``(image path, caption, distance)``) as one PNG/JPEG at ``out``."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"--explain {out}: give a .png or .jpg file name")
    q = draw_query(query_rgb, query_boxes, query_labels, size=2 * thumb)
    cols = max(1, min(5, len(results)))
    rows = max(1, (len(results) + cols - 1) // cols)
    grid = np.full((rows * (thumb + 30), cols * thumb, 3), 255, np.uint8)
    for i, (path, caption, dist) in enumerate(results):
        r, c = divmod(i, cols)
        try:
            img = fit(read_image(path), thumb)
        except ImageError:
            img = np.full((thumb, thumb, 3), 200, np.uint8)
            cv2.putText(img, "missing", (8, thumb // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
        y, x = r * (thumb + 30), c * thumb
        grid[y:y + thumb, x:x + thumb] = img
        cv2.putText(grid, f"{i + 1}. {caption[:22]}", (x + 3, y + thumb + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(grid, f"d={dist:.3g}", (x + 3, y + thumb + 25), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (80, 80, 80), 1,
                    cv2.LINE_AA)
    H = max(q.shape[0], grid.shape[0]) + 24
    canvas = np.full((H, q.shape[1] + 10 + grid.shape[1], 3), 255, np.uint8)
    cv2.putText(canvas, title[:120], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    canvas[24:24 + q.shape[0], :q.shape[1]] = q
    canvas[24:24 + grid.shape[0], q.shape[1] + 10:] = grid
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"--explain {out}: cannot write the picture there; check the folder")
    return out
