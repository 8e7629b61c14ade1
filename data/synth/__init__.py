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
from fashionsearchnet.data.synth.designs import REGION_COLUMNS, Design, make_design, recolor
from fashionsearchnet.data.synth.drawing import MASK_LABELS, draw_garment
from fashionsearchnet.data.synth.photography import render
from fashionsearchnet.data.synth.profiles import (CATEGORIES, CLOSE_UP, COLLARS, COLORS, DETAILS, FINE, PATTERNS,
                                                  PROFILES, SHADE_SPREAD, SLEEVES, synthetic_schema)
from fashionsearchnet.data.synth.writer import DEFAULT_SPLITS, default_workers, generate

__all__ = ["CATEGORIES", "CLOSE_UP", "COLLARS", "COLORS", "DEFAULT_SPLITS", "DETAILS", "FINE", "MASK_LABELS", "PATTERNS",
           "PROFILES", "REGION_COLUMNS", "SHADE_SPREAD", "SLEEVES", "Design", "default_workers", "draw_garment",
           "generate", "make_design", "recolor", "render", "synthetic_schema"]
