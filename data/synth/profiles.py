"""The synthetic catalogue's vocabulary and profiles: attribute values, colour shade ranges, what each profile adds,
and the schema (with the region linkage of section 3.4) that a profile's catalogue is written with."""
from __future__ import annotations

from fashionsearchnet.data.schema import Attribute, Region, Schema
from fashionsearchnet.errors import UsageError

CATEGORIES = ("tee", "crop_top", "tunic", "dress", "hoodie", "jacket")
COLLARS = ("round", "v_neck", "square", "high", "collared")
SLEEVES = ("sleeveless", "short", "three_quarter", "long")
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
PROFILES = ("basic", "detailed", "hard", "ambiguous", "regional")
# The regional profile (the basic schema, another plan): families of products sharing shape, torso colour and
# pattern, whose collar and sleeve colours take every combination of the torso colour and REGIONAL_ACCENTS accent
# colours, so that a collar or sleeve request ("this, with navy sleeves") is answered by another product.
REGIONAL_ACCENTS = 2
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
FINE_PROFILES = ("hard", "ambiguous")  # the profiles with the fine-grained attributes
# The ambiguous profile: share of upper-body close-ups, and how far (in range widths, each side) shades spread.
CLOSE_UP = 0.25
SHADE_SPREAD = 0.30


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise UsageError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def synthetic_schema(profile: str = "basic") -> Schema:
    """The schema of the synthetic catalogue, with the region linkage of section 3.4.

    The regional profile's schema is the basic one (models trained on basic catalogues evaluate on it).
    The detailed profile's extra attributes come last and join the torso region's sources (they are drawn on it).
    """
    check_profile(profile)
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
