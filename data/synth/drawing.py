"""Drawing a garment in its canonical frame: colours and pattern textures, torso/sleeves/neckline, the detailed
profile's fastenings, pockets and prints, the hard profile's fit, hem, fabric and cuffs, and the figure wearing it."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from fashionsearchnet.data.synth.designs import Design, pick
from fashionsearchnet.data.synth.profiles import COLORS, PATTERNS

SLEEVE_LENGTH = {"short": 0.14, "three_quarter": 0.31, "long": 0.44}
FIT_WIDTH = {"regular": 1.0, "slim": 0.86, "loose": 1.16}  # garment width multiplier
MASK_LABELS = {"background": 0, "torso": 1, "sleeve": 2, "collar": 3}


def shade_bgr(name: str, shade) -> np.ndarray:
    """The BGR colour at ``shade`` (0-1 per H, S, V inside the named range; beyond it, the range extended)."""
    (h0, h1), (s0, s1), (v0, v1) = COLORS[name]
    hsv = np.array([[[h0 + shade[0] * (h1 - h0), s0 + shade[1] * (s1 - s0), v0 + shade[2] * (v1 - v0)]]])
    hsv[..., 0] %= 180
    hsv[..., 1:] = np.clip(hsv[..., 1:], 0, 255)  # an extended range stops at grey / black / full brightness
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def alternate_shade(base: np.ndarray) -> np.ndarray:
    """The pattern's second shade: darker for light colours, lighter for dark ones."""
    return base * 0.55 if base.mean() > 90 else np.minimum(base + 80, 255)


@functools.lru_cache(maxsize=4)
def grid(c: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:c, 0:c].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


@functools.lru_cache(maxsize=64)
def _pattern_mask(c: int, pattern: str, period: float) -> np.ndarray:
    yy, xx = grid(c)
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


def texture(c: int, color: str, pattern: str, shade, period: float) -> np.ndarray:
    base = shade_bgr(color, shade)
    return np.where(_pattern_mask(c, pattern, period)[..., None], alternate_shade(base), base).astype(np.float32)


def frame_points(c: int, pts) -> np.ndarray:
    return (np.asarray(pts, np.float32) * c * 16).round().astype(np.int32)  # 4 fractional bits


def fill(img: np.ndarray, c: int, pts, value) -> None:
    cv2.fillPoly(img, [frame_points(c, pts)], value, lineType=cv2.LINE_8, shift=4)


def _draw_bottoms(img: np.ndarray, alpha: np.ndarray, c: int, hem: float, rng: np.random.Generator) -> None:
    """Trousers or a skirt in a random colour and pattern under the garment: not the product, a distractor."""
    color = pick(rng, tuple(COLORS))
    pattern = pick(rng, PATTERNS, p=[0.7, 0.1, 0.1, 0.1])
    tex = texture(c, color, pattern, tuple(rng.random(3)), 0.05)
    m = np.zeros((c, c), np.uint8)
    top = hem - 0.04
    if rng.random() < 0.6:  # trousers
        for side in (-1, 1):
            fill(m, c, [(0.5, top), (0.5 + side * 0.11, top), (0.5 + side * 0.10, 1.0), (0.5 + side * 0.02, 1.0)], 1)
    else:  # skirt
        fill(m, c, [(0.5 - 0.12, top), (0.5 + 0.12, top), (0.5 + 0.2, min(top + 0.24, 1.0)),
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
        skin = np.array(pick(rng, [(173, 203, 236), (120, 160, 205), (70, 100, 150), (150, 180, 225)]), np.float32)
        cv2.circle(img, (int(0.5 * c), int((ys - 0.11) * c)), int(0.065 * c), skin.tolist(), -1)
        cv2.circle(alpha, (int(0.5 * c), int((ys - 0.11) * c)), int(0.065 * c), 255, -1)
        for side in (-1, 1):
            arm = [(0.5 + side * (hw - 0.02), ys + 0.02), (0.5 + side * (hw + 0.14), ys + 0.47),
                   (0.5 + side * (hw + 0.09), ys + 0.49), (0.5 + side * (hw - 0.06), ys + 0.06)]
            leg = [(0.5 + side * 0.015, hem - 0.02), (0.5 + side * 0.085, hem - 0.02), (0.5 + side * 0.08, 1.0),
                   (0.5 + side * 0.02, 1.0)]
            for poly in (arm, leg):
                fill(img, c, poly, skin.tolist())
                fill(alpha, c, poly, 255)
        _draw_bottoms(img, alpha, c, hem, rng)
    torso_tex = texture(c, d.torso_color, d.torso_pattern, d.shade, d.period)
    sleeve_tex = texture(c, d.sleeve_color, d.sleeve_pattern, d.shade, d.period)
    collar_tex = texture(c, d.collar_color, "solid", d.shade, d.period)
    part = np.zeros((c, c), np.uint8)
    hem_style = det.get("hem", "straight")
    torso = [(0.5 - hw, ys), (0.5 + hw, ys), (0.5 + waist_w, 0.55), *_hem_edge(hem_style, hem, hem_w),
             (0.5 - waist_w, 0.55)]
    fill(part, c, torso, 1)
    if hem_style == "split":  # a side slit at each side of the hem
        for side in (-1, 1):
            fill(part, c, [(0.5 + side * (hem_w + 0.01), hem + 0.01), (0.5 + side * (hem_w - 0.035), hem + 0.01),
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
            fill(part, c, [p0, e0, e1, p1], 2)
            if det.get("cuff") in ("band", "rolled"):
                w = 0.035 if det["cuff"] == "band" else 0.055
                fill(cuff, c, [e0, e1, e1 - w * d_in, e0 - w * d_out], 1)
                if det["cuff"] == "rolled":
                    cv2.line(cuff, tuple(frame_points(c, [e0 - w * d_out])[0]), tuple(frame_points(c, [e1 - w * d_in])[0]), 2,
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
        fill(inner, c, tri, 1)
        cv2.polylines(trim, [frame_points(c, tri)], True, 1, t, shift=4)
    elif d.collar == "square":
        cv2.rectangle(inner, (int(0.43 * c), cy), (int(0.57 * c), int((ys + 0.085) * c)), 1, -1)
        cv2.rectangle(trim, (int(0.43 * c), cy), (int(0.57 * c), int((ys + 0.085) * c)), 1, t)
    elif d.collar == "high":
        cv2.rectangle(trim, (int(0.435 * c), int((ys - 0.075) * c)), (int(0.565 * c), int((ys + 0.02) * c)), 1, -1)
    else:  # collared
        cv2.ellipse(inner, (cx, cy), (int(0.05 * c), int(0.05 * c)), 0, 0, 180, 1, -1)
        for side in (-1, 1):
            fill(trim, c, [(0.5, ys + 0.07), (0.5 + side * 0.075, ys - 0.015), (0.5 + side * 0.1, ys + 0.07)], 1)
    inner &= (part > 0)
    part[inner > 0] = 1
    part[trim > 0] = 3
    for label, tex in ((1, torso_tex), (2, sleeve_tex), (3, collar_tex)):
        m = part == label
        img[m] = tex[m]
    img[inner > 0] *= 0.6
    if d.category == "hoodie":  # kangaroo pocket and ribbed hem band
        pocket = [(0.41, hem - 0.17), (0.59, hem - 0.17), (0.62, hem - 0.06), (0.38, hem - 0.06)]
        cv2.polylines(img, [frame_points(c, pocket)], True, (alternate_shade(shade_bgr(d.torso_color, d.shade)) * 0.8).tolist(), max(1, c // 90), shift=4)
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
        yy, xx = grid(c)
        phase = xx if fabric == "knit" else (xx + yy) / np.sqrt(2)  # vertical ribs or a diagonal weave
        f = 1.0 + 0.14 * np.cos(2 * np.pi * phase / (0.026 * c))
        g = part > 0
        img[g] *= f[g][:, None]


def _draw_details(img: np.ndarray, part: np.ndarray, details: dict[str, str], d: Design, c: int, ys: float,
                  hem: float) -> None:
    """The detailed profile's fastening, pockets and print, drawn on the torso (clipped to it)."""
    layer = img.copy()
    cx = int(0.5 * c)
    base = shade_bgr(d.torso_color, d.shade)
    seam = (alternate_shade(base) * 0.8).tolist()
    thin = max(1, c // 90)
    if details["print"] == "logo":  # a small emblem on the left chest
        fill(layer, c, [(0.555, ys + 0.10), (0.625, ys + 0.10), (0.59, ys + 0.16)], shade_bgr(d.print_color, d.shade).tolist())
    elif details["print"] == "graphic":  # a large disc with a ring across the chest
        center, r = (cx, int((ys + 0.20) * c)), int(0.085 * c)
        cv2.circle(layer, center, r, shade_bgr(d.print_color, d.shade).tolist(), -1)
        cv2.circle(layer, center, int(r * 0.55), alternate_shade(shade_bgr(d.print_color, d.shade)).tolist(), max(1, c // 60))
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
