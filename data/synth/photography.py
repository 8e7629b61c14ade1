"""Photographing a drawn garment: the camera's framing (whole garment or a close-up), lighting, background,
occluders, white balance, exposure and noise, down to the catalogue's image size."""
from __future__ import annotations

import cv2
import numpy as np

from fashionsearchnet.data.synth.designs import Design
from fashionsearchnet.data.synth.drawing import draw_garment, grid


def _background(c: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.random()
    base = np.array([rng.uniform(170, 255)] * 3, np.float32) + rng.normal(0, 12, 3).astype(np.float32)
    if kind < 0.35:
        bg = np.broadcast_to(base, (c, c, 3)).copy()
    elif kind < 0.65:
        other = base + rng.normal(0, 40, 3).astype(np.float32)
        tgrid = np.linspace(0, 1, c, dtype=np.float32)[:, None, None]
        bg = (base * (1 - tgrid) + other * tgrid) * np.ones((1, c, 1), np.float32)
    elif kind < 0.85:
        noise = rng.normal(0, 1, (max(4, c // 16), max(4, c // 16), 3)).astype(np.float32)
        bg = base + 25 * cv2.resize(noise, (c, c), interpolation=cv2.INTER_CUBIC)
    else:  # a darker studio background
        bg = np.broadcast_to(base * rng.uniform(0.25, 0.55), (c, c, 3)).copy()
    return np.clip(bg, 0, 255).astype(np.float32)


def framing(c: int, rng: np.random.Generator, close_up: float) -> np.ndarray:
    """The camera's affine framing of the canonical frame: whole garment, or (with chance ``close_up``) upper body.

    A close-up magnifies 1.45-1.7x about a point at 42% of the height, so that everything below about 72% (every
    hem but a crop top's, long sleeves' ends) falls out of frame. ``close_up`` 0 draws exactly as before it existed.
    """
    if close_up > 0 and rng.random() < close_up:
        anchor = 0.42
        m = cv2.getRotationMatrix2D((c / 2, anchor * c), rng.uniform(-8, 8), rng.uniform(1.45, 1.7))
        m[:, 2] += np.array([0.0, (0.5 - anchor) * c]) + rng.uniform(-0.05, 0.05, 2) * c
        return m
    scale = rng.uniform(0.68, 1.12)
    m = cv2.getRotationMatrix2D((c / 2, c / 2), rng.uniform(-15, 15), scale)
    m[:, 2] += rng.uniform(-0.13, 0.13, 2) * c
    return m


def render(d: Design, size: int, rng: np.random.Generator, close_up: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One photo of a design: (uint8 BGR size x size x 3, uint8 region labels size x size).

    ``close_up``: the chance of an upper-body close-up (:func:`framing`; the ambiguous profile's ``CLOSE_UP``).
    """
    c = 2 * size
    figure = rng.random() < 0.35
    img, alpha, lab = draw_garment(d, c, rng, figure)
    m = framing(c, rng, close_up)
    img = cv2.warpAffine(img, m, (c, c), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, m, (c, c), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    lab = cv2.warpAffine(lab, m, (c, c), flags=cv2.INTER_NEAREST)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = grid(c)
    light = 1.0 + rng.uniform(0.08, 0.25) * (np.cos(ang) * (xx / c - 0.5) + np.sin(ang) * (yy / c - 0.5)) * 2
    out = _background(c, rng) * (1 - alpha) + img * light[..., None] * alpha
    if rng.random() < 0.15:  # an occluder: a bag, tag or hand in front of part of the garment
        occ = np.zeros((c, c), np.uint8)
        center = (int(rng.uniform(0.25, 0.75) * c), int(rng.uniform(0.3, 0.85) * c))
        axes = (int(rng.uniform(0.08, 0.16) * c), int(rng.uniform(0.06, 0.14) * c))
        cv2.ellipse(occ, center, axes, rng.uniform(0, 180), 0, 360, 1, -1)
        out[occ > 0] = rng.uniform(40, 200, 3).astype(np.float32)
        lab[occ > 0] = 0
    # camera: white balance (per-channel gain) and exposure, applied to the whole photo
    out *= (np.exp(rng.normal(0, 0.06, 3)) * rng.uniform(0.82, 1.15)).astype(np.float32)
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(2, 7))
    out = cv2.resize(np.clip(out, 0, 255), (size, size), interpolation=cv2.INTER_AREA)
    lab = cv2.resize(lab, (size, size), interpolation=cv2.INTER_NEAREST)
    return out.round().astype(np.uint8), lab
