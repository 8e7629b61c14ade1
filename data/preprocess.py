"""Image decoding and preprocessing shared by training and the runtime (numpy + OpenCV, no torch).

Preprocessing (one line, chosen here): resize the whole image to ``size`` x ``size`` (INTER_AREA when
shrinking, INTER_LINEAR when growing; catalogue photos are already roughly centred), RGB, then
``(x - mean) / std`` with the ImageNet statistics so torchvision AlexNet weights can be loaded as the paper does.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fashionsearchnet.errors import ImageError

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
MAX_PIXELS = 50_000_000  # decoded images larger than this are refused (a 20000x20000 image is 400 MP)


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


def _check_size(buf: np.ndarray, source: str) -> None:
    """Refuse images whose header announces too many pixels, before decoding them."""
    h = w = None
    b = buf.tobytes()[:65536]
    if b.startswith(b"\x89PNG") and len(b) >= 24:
        w, h = int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    elif b.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(b):
            if b[i] != 0xFF:
                i += 1
                continue
            marker = b[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = int.from_bytes(b[i + 5 : i + 7], "big"), int.from_bytes(b[i + 7 : i + 9], "big")
                break
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            i += 2 + int.from_bytes(b[i + 2 : i + 4], "big")
    if h is not None and w is not None and h * w > MAX_PIXELS:
        raise ImageError(
            f"{source}: image is {w}x{h} pixels, more than the {MAX_PIXELS // 1_000_000} MP limit; resize it first"
        )


def decode_image(data: bytes | bytearray | memoryview, source: str = "image") -> np.ndarray:
    """Encoded bytes -> uint8 RGB, EXIF orientation applied. Raises ImageError naming ``source``."""
    if not data:
        raise ImageError(f"{source}: zero-size image; send a JPEG or PNG file")
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    _check_size(buf, source)
    # IMREAD_COLOR applies EXIF orientation; IMREAD_UNCHANGED keeps alpha but not orientation, so only
    # use it for PNG (which carries alpha and has no EXIF orientation in practice).
    flags = cv2.IMREAD_UNCHANGED if bytes(data[:4]) == b"\x89PNG" else cv2.IMREAD_COLOR
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error:
        img = None
    if img is None:
        raise ImageError(f"{source}: cannot decode the image (not a JPEG/PNG/BMP/WEBP or truncated)")
    return to_rgb(img, source)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (EXIF-rotated). Raises ImageError naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{p}: file not found") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror})") from None
    return decode_image(data, source=str(p))
