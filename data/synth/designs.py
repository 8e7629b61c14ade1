"""Designs: what varies between products (shape attributes, per-part colour and pattern, profile details), their
colour variants, the catalogue's plan (which design each image shows) and each image's label row."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashionsearchnet.data.synth.profiles import (CATEGORIES, COLLARS, COLORS, DETAILS, FINE, FINE_PROFILES, PATTERNS,
                                                  REGIONAL_ACCENTS, SHADE_SPREAD, SLEEVES)

REGION_COLUMNS = ("torso:color", "torso:pattern", "sleeve:color", "sleeve:pattern", "collar:color")


def zipf(n: int) -> list[float]:
    """Skewed value frequencies (1/rank, in the declared order), as in real catalogues: the detailed profile."""
    w = 1.0 / np.arange(1, n + 1)
    return list(w / w.sum())


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


def pick(rng: np.random.Generator, values, p=None):
    return values[int(rng.choice(len(values), p=p))]


def _other(rng: np.random.Generator, values, current):
    return pick(rng, [v for v in values if v != current])


def make_design(rng: np.random.Generator, profile: str = "basic") -> Design:
    detailed = profile in ("detailed", *FINE_PROFILES)
    skew = zipf if detailed else (lambda n: None)  # noqa: E731 - basic: uniform draws, as before profiles
    color = pick(rng, tuple(COLORS), p=skew(len(COLORS)))
    pattern = pick(rng, PATTERNS, p=zipf(len(PATTERNS)) if detailed else [0.4, 0.2, 0.2, 0.2])
    sleeve = pick(rng, SLEEVES, p=skew(len(SLEEVES)))
    d = Design(
        category=pick(rng, CATEGORIES, p=skew(len(CATEGORIES))), collar=pick(rng, COLLARS, p=skew(len(COLLARS))),
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
        d.details = tuple((name, pick(rng, values, p=list(p))) for name, (values, p) in DETAILS.items())
        d.print_color = pick(rng, tuple(COLORS))
    if profile in FINE_PROFILES:  # drawn last, so that the detailed draws are unchanged; no cuff without sleeves
        fine = [(name, pick(rng, values, p=list(p))) for name, (values, p) in FINE.items()]
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
        new = pick(rng, [c for c in COLORS if c != d.torso_color and c not in taken])
    return recolored(d, new)


def recolored(d: Design, new: str) -> Design:
    """``d`` with torso colour ``new``: every part that had the torso colour takes it, a part that had ``new``
    takes the old torso colour (the colours swap), the rest is unchanged."""
    same = lambda c: new if c == d.torso_color else (c if c != new else d.torso_color)  # noqa: E731
    return Design(d.category, d.collar, d.sleeve, new, d.torso_pattern, same(d.sleeve_color), d.sleeve_pattern,
                  same(d.collar_color), d.shade, d.period, d.details, d.print_color)


def label_row(d: Design) -> dict[str, str]:
    """The attributes.csv row of a design: image-level labels (the torso's) and the region columns."""
    has_sleeves = d.sleeve != "sleeveless"
    return {
        "category": d.category, "collar": d.collar, "sleeve": d.sleeve, "color": d.torso_color,
        "pattern": d.torso_pattern, **dict(d.details), "torso:color": d.torso_color, "torso:pattern": d.torso_pattern,
        "sleeve:color": d.sleeve_color if has_sleeves else "", "sleeve:pattern": d.sleeve_pattern if has_sleeves else "",
        "collar:color": d.collar_color,
    }


def regional_family(rng: np.random.Generator) -> list[Design]:
    """The products of one regional-profile family: a basic design's shape, torso colour and patterns, with every
    (collar colour, sleeve colour) combination of the torso colour and REGIONAL_ACCENTS other colours (collar
    only for sleeveless garments); each product has its own shade and stripe period (distinct products)."""
    base = make_design(rng, "basic")
    t = base.torso_color
    others = [c for c in COLORS if c != t]
    accents = (t, *(others[int(i)] for i in rng.choice(len(others), REGIONAL_ACCENTS, replace=False)))
    sleeves = accents if base.sleeve != "sleeveless" else (t,)
    return [Design(base.category, base.collar, base.sleeve, t, base.torso_pattern, s, base.sleeve_pattern, c,
                   shade=tuple(rng.random(3)), period=float(rng.choice([0.035, 0.04, 0.045, 0.05, 0.055, 0.06])))
            for c in accents for s in sleeves]


def plan_regional(count: int, seed: int) -> list[tuple[int, str, Design]]:
    """The regional profile's plan: families (:func:`regional_family`) in order; each product is one item with
    1-3 colour variants as in the other profiles, the family's variants sharing their torso colours (so that
    the variants of a family are a family too)."""
    plan: list[tuple[int, str, Design]] = []
    family = 0
    while len(plan) < count:
        rng = np.random.default_rng([seed, 5, family])
        products = regional_family(rng)
        t = products[0].torso_color
        others = [c for c in COLORS if c != t]
        variant_colors = [others[int(i)] for i in rng.choice(len(others), 2, replace=False)]
        for j, d in enumerate(products):
            n_var = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
            for v in range(min(n_var, count - len(plan))):
                plan.append((len(plan), f"R{family:05d}-{j}", d if v == 0 else recolored(d, variant_colors[v - 1])))
        family += 1
    return plan


def plan_catalogue(count: int, seed: int, profile: str = "basic") -> list[tuple[int, str, Design]]:
    """(image index, item id, design) for every image: designs and their colour variants, in order."""
    if profile == "regional":
        return plan_regional(count, seed)
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
