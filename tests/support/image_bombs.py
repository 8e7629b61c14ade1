"""Small files whose headers announce huge images ("decompression bombs"), one per format the dataset format
accepts, built from real small encodings with their size fields patched (checksums fixed where the format has
them), so a decoder that trusts the header allocates and fills the announced size."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

BIG = 12000  # 12000 x 12000 = 144 MP (the limits are 40-50 MP)


def _small(ext: str, params: list[int] | None = None) -> bytes:
    img = (np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3) * 7) % 251
    ok, buf = cv2.imencode(ext, img.astype(np.uint8), params or [])
    assert ok
    return buf.tobytes()


def jpeg_padded(padding: int = 200_000) -> bytes:
    """A JPEG announcing 20000x20000 whose frame header comes after ``padding`` bytes of APP segments."""
    b = bytearray(_small(".jpg"))
    i = 2
    while not (b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2)):
        i += 2 + int.from_bytes(b[i + 2:i + 4], "big")
    b[i + 5:i + 9] = struct.pack(">HH", BIG, BIG)
    pad = b""
    while len(pad) < padding:
        pad += b"\xff\xed" + struct.pack(">H", 65535) + b"\0" * 65533
    return bytes(b[:2]) + pad + bytes(b[2:])


def png() -> bytes:
    b = bytearray(_small(".png"))
    b[16:24] = struct.pack(">II", BIG, BIG)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def webp() -> bytes:
    """Lossy WEBP (VP8) announcing 16383x16383 (the format's largest: 268 MP)."""
    b = bytearray(_small(".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]))
    assert b[12:16] == b"VP8 " and b[23:26] == b"\x9d\x01\x2a"
    b[26:30] = struct.pack("<HH", 0x3FFF, 0x3FFF)
    return bytes(b)


def bmp() -> bytes:
    """An 8-bit RLE BMP announcing 20000x20000: every row is one run of 250 pixels and an end-of-line code."""
    palette = b"".join(struct.pack("<BBBB", i, i, i, 0) for i in range(256))
    rows = (b"\xfa\x07" + b"\x00\x00") * (BIG - 1) + b"\xfa\x07\x00\x01"
    off = 14 + 40 + len(palette)
    dib = struct.pack("<IiiHHIIiiII", 40, BIG, BIG, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off) + dib + palette + rows


def tiff() -> bytes:
    """An uncompressed 8-bit gray TIFF announcing 20000x20000 with one strip of zeros that compresses nothing."""
    e = "<"
    entries = [(256, 4, 1, BIG), (257, 4, 1, BIG), (258, 3, 1, 8), (259, 3, 1, 8),  # deflate
               (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, BIG), (279, 4, 1, 0)]
    c = zlib.compressobj(9)
    row_block = b"\0" * (BIG * 500)
    data = b"".join(c.compress(row_block) for _ in range(BIG // 500)) + c.flush()  # ~400 KB
    ifd_off = 8
    ifd_len = 2 + 12 * len(entries) + 4
    data_off = ifd_off + ifd_len
    out = bytearray(b"II*\x00" + struct.pack(e + "I", ifd_off))
    out += struct.pack(e + "H", len(entries))
    for tag, typ, count, val in entries:
        if tag == 273:
            val = data_off
        if tag == 279:
            val = len(data)
        raw = struct.pack(e + "H", val) + b"\0\0" if typ == 3 else struct.pack(e + "I", val)
        out += struct.pack(e + "HHI", tag, typ, count) + raw
    out += struct.pack(e + "I", 0)
    return bytes(out + data)


BOMBS = {"jpeg_padded": (jpeg_padded, ".jpg"), "png": (png, ".png"), "webp": (webp, ".webp"),
         "bmp": (bmp, ".bmp"), "tiff": (tiff, ".tiff")}
