"""Image dimensions read from the file header, before anything is decoded (a bounded reader: it seeks over
JPEG segments and reads at most a few hundred bytes of the others), for every format the dataset format
accepts: JPEG, PNG, WEBP (VP8, VP8L, VP8X), TIFF, BMP and GIF. No OpenCV here.

``probe(f)`` -> ``(format, width, height)``; ``None`` when the bytes are not one of these formats.
A recognised format whose header does not give a size raises :class:`HeaderError`.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

MAX_TIFF_IFD_ENTRIES = 4096


class HeaderError(ValueError):
    """The header of a recognised format is truncated or does not state the image size."""


def _read(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise HeaderError("the header is truncated")
    return b


def probe(f: BinaryIO) -> tuple[str, int, int] | None:
    """Format, width and height of the image in ``f`` (a seekable binary file positioned at its start)."""
    head = f.read(32)
    if head.startswith(b"\xff\xd8"):
        return ("JPEG", *_jpeg(f))
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise HeaderError("PNG without an IHDR chunk first")
        w, h = struct.unpack(">II", head[16:24])
        return "PNG", w, h
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ("WEBP", *_webp(head))
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ("TIFF", *_tiff(f, head[:2]))
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        raise HeaderError("BigTIFF is not supported; save a classic TIFF, PNG or JPEG")
    if head[:2] == b"BM":
        if len(head) < 26:
            raise HeaderError("the header is truncated")
        (dib,) = struct.unpack("<I", head[14:18])
        if dib == 12:
            w, h = struct.unpack("<hh", head[18:22])
        else:
            w, h = struct.unpack("<ii", head[18:26])
        return "BMP", abs(w), abs(h)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        if len(head) < 13:
            raise HeaderError("the header is truncated")
        w, h, packed = struct.unpack("<HHB", head[6:11])
        f.seek(13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 13))
        if _read(f, 1)[0] not in (0x21, 0x2C, 0x3B):  # an extension, an image or the trailer must follow
            raise HeaderError("no GIF block after the screen descriptor")
        return "GIF", w, h
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(f: BinaryIO) -> tuple[int, int]:
    """Walk the JPEG segments (seeking over their bodies, however large) to the frame header (SOFn)."""
    f.seek(2)
    while True:
        b = _read(f, 1)
        if b != b"\xff":  # garbage between segments: libjpeg skips it too
            continue
        m = _read(f, 1)[0]
        while m == 0xFF:  # fill bytes
            m = _read(f, 1)[0]
        if m in (0x01, 0xD8) or 0xD0 <= m <= 0xD7:
            continue
        if m in (0xD9, 0xDA):
            raise HeaderError("no frame header (SOF) before the image data")
        (length,) = struct.unpack(">H", _read(f, 2))
        if length < 2:
            raise HeaderError("a segment length is invalid")
        if m in _SOF:
            seg = _read(f, 5)
            h, w = struct.unpack(">HH", seg[1:5])
            if h == 0:
                raise HeaderError("the frame header gives no height (DNL)")
            return w, h
        f.seek(length - 2, 1)


def _webp(head: bytes) -> tuple[int, int]:
    kind = head[12:16]
    if len(head) < 30:
        raise HeaderError("the header is truncated")
    if kind == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("VP8 frame without its start code")
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        if head[20] != 0x2F:
            raise HeaderError("VP8L without its signature")
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    raise HeaderError(f"unknown WEBP chunk {kind!r}")


def _tiff(f: BinaryIO, order: bytes) -> tuple[int, int]:
    """Width and height of the first image (the one a decoder reads); tiles larger than the image count too."""
    e = "<" if order == b"II" else ">"
    f.seek(4)
    (off,) = struct.unpack(e + "I", _read(f, 4))
    f.seek(off)
    (n,) = struct.unpack(e + "H", _read(f, 2))
    if n > MAX_TIFF_IFD_ENTRIES:
        raise HeaderError(f"{n} tags in the first directory")
    tags: dict[int, int] = {}
    for _ in range(n):
        tag, typ, count, raw = struct.unpack(e + "HHI4s", _read(f, 12))
        if tag in (256, 257, 322, 323) and count >= 1:
            if typ == 3:
                tags[tag] = struct.unpack(e + "H", raw[:2])[0]
            elif typ == 4:
                tags[tag] = struct.unpack(e + "I", raw)[0]
            else:
                raise HeaderError(f"tag {tag} has type {typ}")
    if 256 not in tags or 257 not in tags:
        raise HeaderError("no ImageWidth/ImageLength tag")
    w, h = tags[256], tags[257]
    if 322 in tags and 323 in tags:  # a tile is allocated whole
        w, h = max(w, tags[322]), max(h, tags[323])
    return w, h
