"""Turn what a caller hands the extractor (a path, encoded bytes or a uint8 array) into uint8 RGB.

Paths and bytes go through ``data/preprocess.py`` (EXIF orientation, gray/RGBA/16-bit, the 50 MP header
check before decoding). Arrays are taken as RGB (H,W,3), RGBA (H,W,4, composited on white) or gray (H,W).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import cv2
import numpy as np

from fashionsearchnet.data.preprocess import MAX_PIXELS, decode_image, read_image
from fashionsearchnet.errors import ImageError

ImageInput = Union[str, Path, bytes, bytearray, memoryview, np.ndarray]


def load_rgb(item: ImageInput, index: int = 0) -> np.ndarray:
    """One input -> uint8 RGB (H,W,3). Raises ImageError naming the input (path or ``images[index]``)."""
    if isinstance(item, (str, Path)):
        return read_image(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return decode_image(item, source=f"images[{index}] (bytes)")
    if isinstance(item, np.ndarray):
        return array_to_rgb(item, f"images[{index}] (array)")
    raise ImageError(f"images[{index}]: type {type(item).__name__} is not a path, bytes or uint8 array")


def array_to_rgb(arr: np.ndarray, source: str) -> np.ndarray:
    """uint8 gray (H,W) / RGB (H,W,3) / RGBA (H,W,4) array -> uint8 RGB (H,W,3)."""
    if arr.size == 0 or arr.ndim not in (2, 3) or min(arr.shape[:2]) == 0:
        raise ImageError(f"{source}: empty or badly shaped array {arr.shape}; give (H, W), (H, W, 3) or (H, W, 4)")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(f"{source}: {arr.shape[1]}x{arr.shape[0]} pixels, more than the "
                         f"{MAX_PIXELS // 1_000_000} MP limit; resize it first")
    if arr.dtype != np.uint8:
        raise ImageError(f"{source}: dtype {arr.dtype}; give uint8 pixels (0-255)")
    if arr.ndim == 2 or arr.shape[2] == 1:
        return cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]), cv2.COLOR_GRAY2RGB)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        return (arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    if arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    raise ImageError(f"{source}: {arr.shape[2]} channels; give gray, RGB or RGBA")
