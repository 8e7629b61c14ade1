"""Synthetic catalogue with region-level truth, drawn with numpy/OpenCV (no torch, deterministic per seed).

Each item is a garment drawn in a canonical frame (torso, sleeves, collar/neckline), each part with its own
colour and pattern texture, then warped (scale/rotation/translation), shaded, placed on a background, sometimes
worn on a stylised figure (with trousers or a skirt in another colour) or partly occluded, given a colour cast
and an exposure change, noised and written as JPEG. Image-level ``color``/``pattern``
describe the torso only; in about 30% of items the sleeves and/or collar differ, recorded only as region
truth (``sleeve:color`` ...). ``masks/<stem>.png`` holds the visible region labels (0 background, 1 torso,
2 sleeve, 3 collar). Designs come in 1-3 colour variants sharing an ``item_id``.

Difficulty (so that an attribute classifier does not saturate the Top-30 protocols): 16 colours including
close shades that a colour cast can turn into each other (red/maroon, blue/navy, orange/brown, yellow/olive,
white/beige, green/teal), 4 sleeve lengths (three-quarter vs long), wide framing jitter, distracting coloured
bottoms on the figure.

The ``detailed`` profile adds three small, local attributes drawn on the torso (``fastening`` none/buttons/zip,
``pocket`` none/chest/patch, ``print`` none/logo/graphic), so that a label vector is shared by few items and
the details live in a small part of the photo, as in catalogues with a dozen attributes (Shopping100k has 12).
It draws every design attribute with skewed, real-catalogue-like frequencies (1/rank in the declared order;
"none" 60% for the details), so that a 4k gallery still holds the targets of many manipulations (uniform draws
over 8 attributes leave ~3% of them satisfiable, these ~13%). The ``basic`` profile (default) writes exactly
what it wrote before profiles existed.

The ``hard`` profile is the detailed one plus four fine-grained attributes, twelve in all as in Shopping100k:
``fit`` (regular/slim/loose: the garment's width, which the framing's scale jitter makes relative), ``hem``
(straight/curved/split: the bottom edge), ``fabric`` (plain/knit/twill: a fine rib or diagonal weave a few
pixels wide) and ``cuff`` (none/band/rolled: the sleeve ends; unknown, an empty cell, for sleeveless garments, as
real catalogues leave labels blank). They are small or subtle cues, so that an attribute classifier makes
mistakes on a 20k catalogue (issue 2: the attribute baseline must not saturate).

The ``ambiguous`` profile is the hard one photographed as real catalogues are, where the photo does not always
settle the label (the labels stay true; the ambiguity is in the pixels). Two rates, chosen once and not tuned:
a quarter of the photos (``CLOSE_UP``) are upper-body close-ups that leave the hem, long sleeves' ends (and so
their cuffs) and the garment's length out of frame; and every colour's shade range is widened by 30% of its
width on each side (``SHADE_SPREAD``), so that neighbouring names (navy/blue, maroon/red, beige/white ...)
overlap, as colour names do between annotators. Its designs, labels and splits are the hard profile's for the
same seed; only the pixels differ.

Rendering is parallel (``workers``); every image has its own seeded generator, so the output does not depend on
the number of workers.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fashionsearchnet.data.dataset import write_dataset
from fashionsearchnet.data.schema import Attribute, Region, Schema
from fashionsearchnet.errors import UsageError

CATEGORIES = ("tee", "crop_top", "tunic", "dress", "hoodie", "jacket")
COLLARS = ("round", "v_neck", "square", "high", "collared")
SLEEVES = ("sleeveless", "short", "three_quarter", "long")
SLEEVE_LENGTH = {"short": 0.14, "three_quarter": 0.31, "long": 0.44}
PATTERNS = ("solid", "striped", "checked", "dotted")
# Named colours as OpenCV HSV ranges (H 0-180): each is a range of shades.
COLORS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "black": ((0, 180), (0, 60), (15, 48)),
    "white": ((0, 180), (0, 18), (228, 255)),
    "grey": ((0, 180), (0, 18), (110, 165)),
    "beige": ((14, 24), (45, 95), (190, 235)),
    "red": ((176, 183), (170, 255), (150, 225)),
    "maroon": ((172, 182), (150, 240), (70, 118)),
    "orange": ((9, 16), (180, 255), (200, 255)),
    "brown": ((8, 17), (120, 200), (70, 125)),
    "yellow": ((24, 31), (150, 230), (210, 255)),
    "olive": ((28, 38), (120, 200), (80, 130)),
    "green": ((50, 72), (140, 230), (90, 190)),
    "teal": ((84, 94), (140, 230), (100, 180)),
    "blue": ((103, 117), (160, 245), (130, 225)),
    "navy": ((108, 120), (150, 240), (52, 95)),
    "purple": ((132, 148), (110, 200), (90, 170)),
    "pink": ((160, 170), (60, 120), (215, 255)),
}
MASK_LABELS = {"background": 0, "torso": 1, "sleeve": 2, "collar": 3}
REGION_COLUMNS = ("torso:color", "torso:pattern", "sleeve:color", "sleeve:pattern", "collar:color")
DEFAULT_SPLITS = (0.75, 0.20, 0.05)
PROFILES = ("basic", "detailed", "hard", "ambiguous")
# The detailed profile's extra attributes: values and how often each is drawn ("none" 60% of the time).
DETAILS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "fastening": (("none", "buttons", "zip"), (0.6, 0.2, 0.2)),
    "pocket": (("none", "chest", "patch"), (0.6, 0.2, 0.2)),
    "print": (("none", "logo", "graphic"), (0.6, 0.2, 0.2)),
}

# The hard profile's fine-grained attributes (after the detailed ones); the first value is drawn 60% of the time.
FINE: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "fit": (("regular", "slim", "loose"), (0.6, 0.2, 0.2)),
    "hem": (("straight", "curved", "split"), (0.6, 0.2, 0.2)),
    "fabric": (("plain", "knit", "twill"), (0.6, 0.2, 0.2)),
    "cuff": (("none", "band", "rolled"), (0.6, 0.2, 0.2)),
}
FIT_WIDTH = {"regular": 1.0, "slim": 0.86, "loose": 1.16}  # garment width multiplier
FINE_PROFILES = ("hard", "ambiguous")  # the profiles with the fine-grained attributes
# The ambiguous profile: share of upper-body close-ups, and how far (in range widths, each side) shades spread.
CLOSE_UP = 0.25
SHADE_SPREAD = 0.30


def _zipf(n: int) -> list[float]:
    """Skewed value frequencies (1/rank, in the declared order), as in real catalogues: the detailed profile."""
    w = 1.0 / np.arange(1, n + 1)
    return list(w / w.sum())


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise UsageError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def synthetic_schema(profile: str = "basic") -> Schema:
    """The schema of the synthetic catalogue, with the region linkage of section 3.4.

    The detailed profile's extra attributes come last and join the torso region's sources (they are drawn on it).
    """
    _check_profile(profile)
    extra = tuple(DETAILS) if profile in ("detailed", *FINE_PROFILES) else ()
    fine = tuple(FINE) if profile in FINE_PROFILES else ()
    torso_fine = tuple(n for n in fine if n != "cuff")
    return Schema(
        attributes=(
            Attribute("category", CATEGORIES),
            Attribute("collar", COLLARS),
            Attribute("sleeve", SLEEVES),
            Attribute("color", tuple(COLORS)),
            Attribute("pattern", PATTERNS),
            *(Attribute(name, DETAILS[name][0]) for name in extra),
            *(Attribute(name, FINE[name][0]) for name in fine),
        ),
        regions=(
            Region("collar", ("collar",), ("color",)),
            Region("sleeve", ("sleeve", *(("cuff",) if fine else ())), ("color", "pattern")),
            Region("torso", ("category", "color", "pattern", *extra, *torso_fine), ("color", "pattern"),
                   ("collar", "sleeve"), True),
        ),
    )


@dataclass
class Design:
    """What varies between designs: shape attributes and per-part colour/pattern."""

    category: str
    collar: str
    sleeve: str
    torso_color: str
    torso_pattern: str
    sleeve_color: str
    sleeve_pattern: str
    collar_color: str
    shade: tuple[float, float, float]  # position inside each colour's shade range, shared by variants
    period: float
    details: tuple[tuple[str, str], ...] = ()  # (attribute, value): detailed profile's DETAILS, hard profile's FINE
    print_color: str = "white"  # colour of a logo or graphic print (not a label: prints are multi-coloured)


def _pick(rng: np.random.Generator, values, p=None):
    return values[int(rng.choice(len(values), p=p))]


def _other(rng: np.random.Generator, values, current):
    return _pick(rng, [v for v in values if v != current])


def make_design(rng: np.random.Generator, profile: str = "basic") -> Design:
    detailed = profile in ("detailed", *FINE_PROFILES)
    skew = _zipf if detailed else (lambda n: None)  # noqa: E731 - basic: uniform draws, as before profiles
    color = _pick(rng, tuple(COLORS), p=skew(len(COLORS)))
    pattern = _pick(rng, PATTERNS, p=_zipf(len(PATTERNS)) if detailed else [0.4, 0.2, 0.2, 0.2])
    sleeve = _pick(rng, SLEEVES, p=skew(len(SLEEVES)))
    d = Design(
        category=_pick(rng, CATEGORIES, p=skew(len(CATEGORIES))), collar=_pick(rng, COLLARS, p=skew(len(COLLARS))),
        sleeve=sleeve,
        torso_color=color, torso_pattern=pattern, sleeve_color=color, sleeve_pattern=pattern, collar_color=color,
        shade=tuple(rng.random(3)), period=float(rng.choice([0.035, 0.04, 0.045, 0.05, 0.055, 0.06])),
    )
    if rng.random() < 0.30:  # a region differs from the torso
        changed = False
        while not changed:
            if sleeve != "sleeveless" and rng.random() < 0.5:
                d.sleeve_color, changed = _other(rng, tuple(COLORS), color), True
            if rng.random() < 0.5:
                d.collar_color, changed = _other(rng, tuple(COLORS), color), True
            if sleeve != "sleeveless" and rng.random() < 0.3:
                d.sleeve_pattern, changed = _other(rng, PATTERNS, pattern), True
    if detailed:  # drawn after everything else, so that the basic draws are unchanged
        d.details = tuple((name, _pick(rng, values, p=list(p))) for name, (values, p) in DETAILS.items())
        d.print_color = _pick(rng, tuple(COLORS))
    if profile in FINE_PROFILES:  # drawn last, so that the detailed draws are unchanged; no cuff without sleeves
        fine = [(name, _pick(rng, values, p=list(p))) for name, (values, p) in FINE.items()]
        d.details += tuple((n, "" if n == "cuff" and sleeve == "sleeveless" else v) for n, v in fine)
    if profile == "ambiguous":  # the same draws as the hard profile; shades spread past their named range
        d.shade = tuple(-SHADE_SPREAD + (1 + 2 * SHADE_SPREAD) * x for x in d.shade)
    return d


def recolor(d: Design, rng: np.random.Generator, taken: tuple[str, ...] = ()) -> Design:
    """A colour variant of the same product: every part that had the torso colour takes the new one.

    ``taken`` are the torso colours of the product's earlier variants; the new colour is none of them.
    (A drawn colour that is taken is redrawn, so variants without a clash are as before this rule.)
    """
    new = _other(rng, tuple(COLORS), d.torso_color)
    if new in taken:
        new = _pick(rng, [c for c in COLORS if c != d.torso_color and c not in taken])
    same = lambda c: new if c == d.torso_color else (c if c != new else d.torso_color)  # noqa: E731
    return Design(d.category, d.collar, d.sleeve, new, d.torso_pattern, same(d.sleeve_color), d.sleeve_pattern,
                  same(d.collar_color), d.shade, d.period, d.details, d.print_color)


def _bgr(name: str, shade) -> np.ndarray:
    """The BGR colour at ``shade`` (0-1 per H, S, V inside the named range; beyond it, the range extended)."""
    (h0, h1), (s0, s1), (v0, v1) = COLORS[name]
    hsv = np.array([[[h0 + shade[0] * (h1 - h0), s0 + shade[1] * (s1 - s0), v0 + shade[2] * (v1 - v0)]]])
    hsv[..., 0] %= 180
    hsv[..., 1:] = np.clip(hsv[..., 1:], 0, 255)  # an extended range stops at grey / black / full brightness
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _alt(base: np.ndarray) -> np.ndarray:
    """The pattern's second shade: darker for light colours, lighter for dark ones."""
    return base * 0.55 if base.mean() > 90 else np.minimum(base + 80, 255)


@functools.lru_cache(maxsize=4)
def _grid(c: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:c, 0:c].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


@functools.lru_cache(maxsize=64)
def _pattern_mask(c: int, pattern: str, period: float) -> np.ndarray:
    yy, xx = _grid(c)
    p = period * c
    if pattern == "solid":
        m = np.zeros((c, c), bool)
    elif pattern == "striped":
        m = (yy / p) % 1.0 < 0.45
    elif pattern == "checked":
        m = ((yy / p) % 1.0 < 0.5) ^ ((xx / p) % 1.0 < 0.5)
    elif pattern == "dotted":
        m = ((yy % p - p / 2) ** 2 + (xx % p - p / 2) ** 2) < (0.22 * p) ** 2
    else:  # pragma: no cover - guarded by PATTERNS
        raise ValueError(pattern)
    m.flags.writeable = False
    return m


def _texture(c: int, color: str, pattern: str, shade, period: float) -> np.ndarray:
    base = _bgr(color, shade)
    return np.where(_pattern_mask(c, pattern, period)[..., None], _alt(base), base).astype(np.float32)


def _pts(c: int, pts) -> np.ndarray:
    return (np.asarray(pts, np.float32) * c * 16).round().astype(np.int32)  # 4 fractional bits


def _fill(img: np.ndarray, c: int, pts, value) -> None:
    cv2.fillPoly(img, [_pts(c, pts)], value, lineType=cv2.LINE_8, shift=4)


def _draw_bottoms(img: np.ndarray, alpha: np.ndarray, c: int, hem: float, rng: np.random.Generator) -> None:
    """Trousers or a skirt in a random colour and pattern under the garment: not the product, a distractor."""
    color = _pick(rng, tuple(COLORS))
    pattern = _pick(rng, PATTERNS, p=[0.7, 0.1, 0.1, 0.1])
    tex = _texture(c, color, pattern, tuple(rng.random(3)), 0.05)
    m = np.zeros((c, c), np.uint8)
    top = hem - 0.04
    if rng.random() < 0.6:  # trousers
        for side in (-1, 1):
            _fill(m, c, [(0.5, top), (0.5 + side * 0.11, top), (0.5 + side * 0.10, 1.0), (0.5 + side * 0.02, 1.0)], 1)
    else:  # skirt
        _fill(m, c, [(0.5 - 0.12, top), (0.5 + 0.12, top), (0.5 + 0.2, min(top + 0.24, 1.0)),
                     (0.5 - 0.2, min(top + 0.24, 1.0))], 1)
    img[m > 0] = tex[m > 0]
    alpha[m > 0] = 255


def draw_garment(d: Design, c: int, rng: np.random.Generator, figure: bool):
    """Canonical-frame garment: (bgr float32 c x c x 3, alpha uint8, labels uint8)."""
    img = np.zeros((c, c, 3), np.float32)
    alpha = np.zeros((c, c), np.uint8)
    lab = np.zeros((c, c), np.uint8)
    ys, hw = 0.27, 0.16
    hem = {"tee": 0.76, "crop_top": 0.56, "tunic": 0.86, "dress": 0.95, "hoodie": 0.76, "jacket": 0.80}[d.category]
    waist_w = {"dress": 0.13, "tunic": 0.15}.get(d.category, hw)
    hem_w = {"dress": 0.27, "tunic": 0.19, "hoodie": 0.175, "jacket": 0.185}.get(d.category, hw)
    if d.category in ("hoodie", "jacket"):
        hw = 0.18
    det = dict(d.details)
    fw = FIT_WIDTH[det.get("fit", "regular")]  # the hard profile's fit (1.0 otherwise)
    hw, waist_w, hem_w = hw * fw, waist_w * fw, hem_w * fw
    if figure:
        skin = np.array(_pick(rng, [(173, 203, 236), (120, 160, 205), (70, 100, 150), (150, 180, 225)]), np.float32)
        cv2.circle(img, (int(0.5 * c), int((ys - 0.11) * c)), int(0.065 * c), skin.tolist(), -1)
        cv2.circle(alpha, (int(0.5 * c), int((ys - 0.11) * c)), int(0.065 * c), 255, -1)
        for side in (-1, 1):
            arm = [(0.5 + side * (hw - 0.02), ys + 0.02), (0.5 + side * (hw + 0.14), ys + 0.47),
                   (0.5 + side * (hw + 0.09), ys + 0.49), (0.5 + side * (hw - 0.06), ys + 0.06)]
            leg = [(0.5 + side * 0.015, hem - 0.02), (0.5 + side * 0.085, hem - 0.02), (0.5 + side * 0.08, 1.0),
                   (0.5 + side * 0.02, 1.0)]
            for poly in (arm, leg):
                _fill(img, c, poly, skin.tolist())
                _fill(alpha, c, poly, 255)
        _draw_bottoms(img, alpha, c, hem, rng)
    torso_tex = _texture(c, d.torso_color, d.torso_pattern, d.shade, d.period)
    sleeve_tex = _texture(c, d.sleeve_color, d.sleeve_pattern, d.shade, d.period)
    collar_tex = _texture(c, d.collar_color, "solid", d.shade, d.period)
    part = np.zeros((c, c), np.uint8)
    hem_style = det.get("hem", "straight")
    torso = [(0.5 - hw, ys), (0.5 + hw, ys), (0.5 + waist_w, 0.55), *_hem_edge(hem_style, hem, hem_w),
             (0.5 - waist_w, 0.55)]
    _fill(part, c, torso, 1)
    if hem_style == "split":  # a side slit at each side of the hem
        for side in (-1, 1):
            _fill(part, c, [(0.5 + side * (hem_w + 0.01), hem + 0.01), (0.5 + side * (hem_w - 0.035), hem + 0.01),
                            (0.5 + side * (hem_w - 0.008), hem - 0.08)], 0)
    cuff = np.zeros((c, c), np.uint8)  # the hard profile's cuffs: 1 band / turn-up, 2 its inner edge
    if d.sleeve != "sleeveless":
        length = SLEEVE_LENGTH[d.sleeve]
        for side in (-1, 1):
            p0 = np.array([0.5 + side * (hw - 0.01), ys])
            p1 = np.array([0.5 + side * (hw - 0.01), ys + 0.12])
            d_out = np.array([side * 0.42, 0.9]) / np.hypot(0.42, 0.9)
            d_in = np.array([side * 0.28, 0.96]) / np.hypot(0.28, 0.96)
            e0, e1 = p0 + length * d_out + np.array([side * 0.02, 0]), p1 + length * d_in
            _fill(part, c, [p0, e0, e1, p1], 2)
            if det.get("cuff") in ("band", "rolled"):
                w = 0.035 if det["cuff"] == "band" else 0.055
                _fill(cuff, c, [e0, e1, e1 - w * d_in, e0 - w * d_out], 1)
                if det["cuff"] == "rolled":
                    cv2.line(cuff, tuple(_pts(c, [e0 - w * d_out])[0]), tuple(_pts(c, [e1 - w * d_in])[0]), 2,
                             max(1, c // 110), shift=4)
    # neckline: cut (shows the darker inside of the torso) + trim/band/flaps in the collar colour
    inner = np.zeros((c, c), np.uint8)
    trim = np.zeros((c, c), np.uint8)
    t = max(2, int(0.028 * c))
    cx, cy = int(0.5 * c), int(ys * c)
    if d.collar == "round":
        cv2.ellipse(inner, (cx, cy), (int(0.075 * c), int(0.065 * c)), 0, 0, 180, 1, -1)
        cv2.ellipse(trim, (cx, cy), (int(0.075 * c), int(0.065 * c)), 0, 0, 180, 1, t)
    elif d.collar == "v_neck":
        tri = [(0.43, ys), (0.57, ys), (0.5, ys + 0.15)]
        _fill(inner, c, tri, 1)
        cv2.polylines(trim, [_pts(c, tri)], True, 1, t, shift=4)
    elif d.collar == "square":
        cv2.rectangle(inner, (int(0.43 * c), cy), (int(0.57 * c), int((ys + 0.085) * c)), 1, -1)
        cv2.rectangle(trim, (int(0.43 * c), cy), (int(0.57 * c), int((ys + 0.085) * c)), 1, t)
    elif d.collar == "high":
        cv2.rectangle(trim, (int(0.435 * c), int((ys - 0.075) * c)), (int(0.565 * c), int((ys + 0.02) * c)), 1, -1)
    else:  # collared
        cv2.ellipse(inner, (cx, cy), (int(0.05 * c), int(0.05 * c)), 0, 0, 180, 1, -1)
        for side in (-1, 1):
            _fill(trim, c, [(0.5, ys + 0.07), (0.5 + side * 0.075, ys - 0.015), (0.5 + side * 0.1, ys + 0.07)], 1)
    inner &= (part > 0)
    part[inner > 0] = 1
    part[trim > 0] = 3
    for label, tex in ((1, torso_tex), (2, sleeve_tex), (3, collar_tex)):
        m = part == label
        img[m] = tex[m]
    img[inner > 0] *= 0.6
    if d.category == "hoodie":  # kangaroo pocket and ribbed hem band
        pocket = [(0.41, hem - 0.17), (0.59, hem - 0.17), (0.62, hem - 0.06), (0.38, hem - 0.06)]
        cv2.polylines(img, [_pts(c, pocket)], True, (_alt(_bgr(d.torso_color, d.shade)) * 0.8).tolist(), max(1, c // 90), shift=4)
        band = (part == 1) & (np.arange(c)[:, None] > (hem - 0.035) * c)
        img[band] *= 0.8
    elif d.category == "jacket":  # open front (and, in the basic profile, its zip line and buttons)
        cv2.line(img, (cx, int((ys + 0.08) * c)), (cx, int(hem * c)), (40, 40, 40), max(1, c // 100))
        if not d.details:
            for k in range(4):
                cv2.circle(img, (cx + max(2, c // 40), int((ys + 0.14 + k * 0.11) * c)), max(1, c // 90),
                           (200, 200, 200), -1)
    if d.details:
        _draw_details(img, part, det, d, c, ys, hem)
    _draw_fine(img, part, cuff, det, c)
    alpha[part > 0] = 255
    lab[:] = part
    return img, alpha, lab


def _hem_edge(style: str, hem: float, hem_w: float) -> list[tuple[float, float]]:
    """The torso's bottom edge, right to left: straight (and split, cut later) or curved (a shirt-tail)."""
    if style != "curved":
        return [(0.5 + hem_w, hem), (0.5 - hem_w, hem)]
    return [(0.5 + t * hem_w, hem - 0.02 + 0.045 * (1 - t * t)) for t in np.linspace(1, -1, 9)]


def _draw_fine(img: np.ndarray, part: np.ndarray, cuff: np.ndarray, det: dict[str, str], c: int) -> None:
    """The hard profile's fabric (a fine rib or twill over the whole garment) and sleeve cuffs (on the sleeves)."""
    sleeve = part == 2
    band = (cuff == 1) & sleeve
    if det.get("cuff") == "band":  # a darker ribbed band
        img[band] *= 0.6
    elif det.get("cuff") == "rolled":  # the lighter inside turned up, with a dark fold line
        img[band] = img[band] * 0.65 + 0.35 * 255
        img[(cuff == 2) & sleeve] *= 0.45
    fabric = det.get("fabric", "plain")
    if fabric != "plain":
        yy, xx = _grid(c)
        phase = xx if fabric == "knit" else (xx + yy) / np.sqrt(2)  # vertical ribs or a diagonal weave
        f = 1.0 + 0.14 * np.cos(2 * np.pi * phase / (0.026 * c))
        g = part > 0
        img[g] *= f[g][:, None]


def _draw_details(img: np.ndarray, part: np.ndarray, details: dict[str, str], d: Design, c: int, ys: float,
                  hem: float) -> None:
    """The detailed profile's fastening, pockets and print, drawn on the torso (clipped to it)."""
    layer = img.copy()
    cx = int(0.5 * c)
    base = _bgr(d.torso_color, d.shade)
    seam = (_alt(base) * 0.8).tolist()
    thin = max(1, c // 90)
    if details["print"] == "logo":  # a small emblem on the left chest
        _fill(layer, c, [(0.555, ys + 0.10), (0.625, ys + 0.10), (0.59, ys + 0.16)], _bgr(d.print_color, d.shade).tolist())
    elif details["print"] == "graphic":  # a large disc with a ring across the chest
        center, r = (cx, int((ys + 0.20) * c)), int(0.085 * c)
        cv2.circle(layer, center, r, _bgr(d.print_color, d.shade).tolist(), -1)
        cv2.circle(layer, center, int(r * 0.55), _alt(_bgr(d.print_color, d.shade)).tolist(), max(1, c // 60))
    if details["pocket"] == "chest":  # one patch pocket on the right chest
        cv2.rectangle(layer, (int(0.385 * c), int((ys + 0.09) * c)), (int(0.455 * c), int((ys + 0.17) * c)), seam, thin)
    elif details["pocket"] == "patch":  # two patch pockets low on the front
        for x0 in (0.36, 0.56):
            cv2.rectangle(layer, (int(x0 * c), int((hem - 0.20) * c)), (int((x0 + 0.085) * c), int((hem - 0.10) * c)),
                          seam, thin)
    if details["fastening"] == "buttons":
        for k in range(5):
            cv2.circle(layer, (cx + max(2, c // 45), int((ys + 0.10 + k * (hem - ys - 0.16) / 4) * c)),
                       max(1, c // 80), (225, 225, 225) if base.mean() < 110 else (35, 35, 35), -1)
    elif details["fastening"] == "zip":  # a metal zip with its pull
        cv2.line(layer, (cx, int((ys + 0.06) * c)), (cx, int((hem - 0.01) * c)), (175, 178, 182), max(2, c // 70))
        cv2.rectangle(layer, (cx - max(1, c // 110), int((ys + 0.06) * c)), (cx + max(1, c // 110), int((ys + 0.11) * c)),
                      (120, 122, 128), -1)
    torso = part == 1
    img[torso] = layer[torso]


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


def _framing(c: int, rng: np.random.Generator, close_up: float) -> np.ndarray:
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

    ``close_up``: the chance of an upper-body close-up (:func:`_framing`; the ambiguous profile's ``CLOSE_UP``).
    """
    c = 2 * size
    figure = rng.random() < 0.35
    img, alpha, lab = draw_garment(d, c, rng, figure)
    m = _framing(c, rng, close_up)
    img = cv2.warpAffine(img, m, (c, c), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, m, (c, c), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    lab = cv2.warpAffine(lab, m, (c, c), flags=cv2.INTER_NEAREST)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = _grid(c)
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


def _row(d: Design) -> dict[str, str]:
    has_sleeves = d.sleeve != "sleeveless"
    return {
        "category": d.category, "collar": d.collar, "sleeve": d.sleeve, "color": d.torso_color,
        "pattern": d.torso_pattern, **dict(d.details), "torso:color": d.torso_color, "torso:pattern": d.torso_pattern,
        "sleeve:color": d.sleeve_color if has_sleeves else "", "sleeve:pattern": d.sleeve_pattern if has_sleeves else "",
        "collar:color": d.collar_color,
    }


def _plan(count: int, seed: int, profile: str = "basic") -> list[tuple[int, str, Design]]:
    """(image index, item id, design) for every image: designs and their colour variants, in order."""
    plan: list[tuple[int, str, Design]] = []
    design_no = 0
    while len(plan) < count:
        drng = np.random.default_rng([seed, 2, design_no])
        variant = make_design(drng, profile)
        n_var = int(drng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        taken: tuple[str, ...] = ()
        for v in range(min(n_var, count - len(plan))):
            if v:
                variant = recolor(variant, drng, taken)
            taken += (variant.torso_color,)
            plan.append((len(plan), f"D{design_no:06d}", variant))
        design_no += 1
    return plan


def _render_chunk(out: str, seed: int, size: int, masks: bool, close_up: float,
                  chunk: list[tuple[int, str, Design]]) -> int:
    """Render and write the images (and masks) of one chunk of the plan; returns how many."""
    cv2.setNumThreads(1)
    for i, _, design in chunk:
        img, lab = render(design, size, np.random.default_rng([seed, 3, i]), close_up)
        stem = f"{i:06d}"
        if not cv2.imwrite(os.path.join(out, "images", f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {out}/images/{stem}.jpg")
        if masks and not cv2.imwrite(os.path.join(out, "masks", f"{stem}.png"), lab):
            raise OSError(f"could not write {out}/masks/{stem}.png")
    return len(chunk)


def default_workers(count: int) -> int:
    """Processes for rendering: one per CPU (at most 16); one for small catalogues (start-up would dominate)."""
    return 1 if count < 400 else max(1, min(os.cpu_count() or 1, 16))


def generate(out: str | Path, count: int, seed: int = 0, size: int = 128,
             splits: tuple[float, float, float] = DEFAULT_SPLITS, masks: bool = True,
             progress: Callable[[int], None] | None = None, workers: int | None = None,
             profile: str = "basic") -> Path:
    """Write ``count`` synthetic catalogue photos with labels to ``out``; deterministic for a seed.

    ``profile`` is ``basic`` (5 attributes), ``detailed`` (8: adds fastening, pocket and print), ``hard`` (12: adds
    fit, hem, fabric and cuff) or ``ambiguous`` (the hard profile's labels, with close-ups and overlapping shades).

    ``workers`` processes render in parallel (default :func:`default_workers`); the output is the same for any
    number of workers.
    """
    if count <= 0:
        raise UsageError(f"--count must be a positive number of images, got {count}")
    if not 32 <= size <= 1024:
        raise UsageError(f"--size must be between 32 and 1024 pixels, got {size}")
    _check_profile(profile)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    fr = np.asarray(splits, np.float64)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1) > 1e-6:
        raise UsageError(f"--splits must be three fractions train,gallery,query summing to 1, got {splits}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if masks:
        (out / "masks").mkdir(exist_ok=True)
    schema = synthetic_schema(profile)
    header = ["image", "split", "item_id", *schema.names, *REGION_COLUMNS]
    split_draw = np.random.default_rng([seed, 1]).random(count)
    split_names = np.where(split_draw < fr[0], "train", np.where(split_draw < fr[0] + fr[1], "gallery", "query"))
    plan = _plan(count, seed, profile)
    n_workers = default_workers(count) if workers is None else workers
    chunks = [plan[k:k + 64] for k in range(0, count, 64)]
    job = functools.partial(_render_chunk, str(out), seed, size, masks, CLOSE_UP if profile == "ambiguous" else 0.0)
    if n_workers == 1:
        done = map(job, chunks)
        pool = None
    else:
        import multiprocessing

        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
        done = pool.map(job, chunks)
    try:
        for n in done:
            if progress:
                progress(n)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    rows = [{"image": f"images/{i:06d}.jpg", "split": str(split_names[i]), "item_id": item, **_row(d)}
            for i, item, d in plan]
    return write_dataset(out, header, rows, schema)
