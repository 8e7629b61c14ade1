"""Image decoding and preprocessing shared by training and the runtime (numpy + OpenCV, no torch).

Preprocessing (one line, chosen here): resize the whole image to ``size`` x ``size`` (INTER_AREA when
shrinking, INTER_LINEAR when growing; catalogue photos are already roughly centred), RGB, then
``(x - mean) / std`` with the ImageNet statistics so torchvision AlexNet weights can be loaded as the paper does.
"""
from __future__ import annotations

import io
import os
from struct import error as struct_error
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_PIXELS = 50_000_000  # decoded images larger than this are refused (a 20000x20000 image is 400 MP)
# OpenCV's own limit, a second guard behind the header check below: read once when cv2 is imported, so it is
# set in fashionsearchnet/__init__.py (imported before this module); repeated here for clarity.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fashionsearchnet.data.imageheader import HeaderError, probe  # noqa: E402
from fashionsearchnet.errors import ImageError, ImageTooLargeError  # noqa: E402

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
FORMATS = "JPEG/PNG/WEBP/BMP/TIFF/GIF"


@dataclass(frozen=True)
class Preprocessing:
    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(int(d["size"]), tuple(d["mean"]), tuple(d["std"]))

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 RGB -> uint8 size x size x 3."""
        h, w = rgb.shape[:2]
        if (h, w) == (self.size, self.size):
            return rgb
        interp = cv2.INTER_AREA if (h > self.size or w > self.size) else cv2.INTER_LINEAR
        return cv2.resize(rgb, (self.size, self.size), interpolation=interp)

    def normalize(self, rgb_resized: np.ndarray) -> np.ndarray:
        """uint8 (..., size, size, 3) -> float32 (..., 3, size, size)."""
        x = (rgb_resized.astype(np.float32) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.normalize(self.resize(rgb))


def to_rgb(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Any decoded OpenCV image (gray, BGR, BGRA, 16-bit) -> uint8 RGB."""
    if img is None or img.size == 0:
        raise ImageError(f"{source}: image is empty")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        # composite transparent pixels onto white (catalogue background) rather than black
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        bgr = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return cv2.cvtColor(bgr.astype(np.uint8), cv2.COLOR_BGR2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def check_header(f, source: str, max_side: int | None = None, max_pixels: int = MAX_PIXELS) -> str:
    """Refuse an image before decoding it: not one of the accepted formats, no size in its header, or a size over
    ``max_pixels`` (or ``max_side`` a side). ``f`` is a seekable binary file at its start; returns the format."""
    if not f.read(1):
        raise ImageError(f"{source}: zero-size image; send a JPEG or PNG file")
    f.seek(0)
    try:
        found = probe(f)
    except (HeaderError, struct_error) as e:
        raise ImageError(f"{source}: cannot decode the image (its header is damaged: {e}); send a {FORMATS} file") from None
    if found is None:
        raise ImageError(f"{source}: cannot decode the image (not a {FORMATS} file)")
    fmt, w, h = found
    if w <= 0 or h <= 0:
        raise ImageError(f"{source}: cannot decode the image ({fmt} header says {w}x{h} pixels)")
    if w * h > max_pixels or (max_side is not None and max(w, h) > max_side):
        limit = (f"limit of {max_side} px a side and {max_pixels // 1_000_000} MP" if max_side is not None else
                 f"{max_pixels // 1_000_000} MP limit")
        raise ImageTooLargeError(f"{source}: image is {w}x{h} pixels, more than the {limit} (read from the {fmt} "
                                 "header, not decoded); resize it first")
    return fmt


def decode_image(data: bytes | bytearray | memoryview, source: str = "image", max_side: int | None = None,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded bytes -> uint8 RGB, EXIF orientation applied. Raises ImageError naming ``source``
    (ImageTooLargeError when the header announces more than ``max_pixels`` / ``max_side``: nothing is decoded)."""
    if not data:
        raise ImageError(f"{source}: zero-size image; send a JPEG or PNG file")
    data = bytes(data)
    check_header(io.BytesIO(data), source, max_side, max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR applies EXIF orientation; IMREAD_UNCHANGED keeps alpha but not orientation, so only
    # use it for PNG (which carries alpha and has no EXIF orientation in practice).
    flags = cv2.IMREAD_UNCHANGED if bytes(data[:4]) == b"\x89PNG" else cv2.IMREAD_COLOR
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error:
        img = None
    if img is None:
        raise ImageError(f"{source}: cannot decode the image (not a {FORMATS} file, or truncated)")
    return to_rgb(img, source)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (EXIF-rotated). Raises ImageError naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:  # the header is checked before the file is read whole
            check_header(f, str(p))
            f.seek(0)
            data = f.read()
    except FileNotFoundError:
        raise ImageError(f"{p}: file not found") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror or e})") from None
    return decode_image(data, source=str(p))
