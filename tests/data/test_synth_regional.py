"""The regional profile: the basic schema, product families whose collar and sleeve colours take every
combination of the torso colour and two accents, colour variants per product; the other profiles unchanged."""
from __future__ import annotations

import hashlib
from collections import defaultdict

import pytest

from fashionsearchnet.data.synth import synthetic_schema
from fashionsearchnet.data.synth.designs import plan_catalogue
from fashionsearchnet.data.synth.writer import catalogue_rows

SPLITS = (0.0, 0.8889, 0.1111)


def test_regional_schema_is_the_basic_one():
    assert synthetic_schema("regional").to_dict() == synthetic_schema("basic").to_dict()
    header_b = catalogue_rows(10, 1, SPLITS, "basic")[0]
    assert catalogue_rows(10, 1, SPLITS, "regional")[0] == header_b


def test_families_share_shape_torso_and_pattern_and_cover_the_accent_grid():
    _, rows, _, plan = catalogue_rows(400, 101, SPLITS, "regional")
    families = defaultdict(list)
    for (_, item, d), row in zip(plan, rows):
        assert row["item_id"] == item
        families[item.split("-")[0]].append(d)
    assert len(families) >= 20
    for fam, designs in list(families.items())[:-1]:  # the last family may be cut short by --count
        firsts = {}
        for (_, item, d) in (p for p in plan if p[1].startswith(fam + "-")):
            firsts.setdefault(item, d)  # each product's first variant
        shape = {(d.category, d.collar, d.sleeve, d.torso_pattern, d.sleeve_pattern, d.torso_color)
                 for d in firsts.values()}
        assert len(shape) == 1, fam
        torso = next(iter(shape))[-1]
        combos = {(d.collar_color, d.sleeve_color) for d in firsts.values()}
        accents = {c for c, _ in combos}
        assert torso in accents and len(accents) == 3
        sleeveless = next(iter(firsts.values())).sleeve == "sleeveless"
        # every (collar, sleeve) combination once: 9 products, or 3 (collar only) without sleeves
        assert len(firsts) == len(combos) == (3 if sleeveless else 9)
        assert len({(d.shade, d.period) for d in firsts.values()}) == len(firsts)  # distinct products


@pytest.mark.parametrize("profile, count, digest", [
    ("basic", 300, "425f5d5a9eef977ced5dc7b7e98719e10ba181eaa295f55d1458efe71f2cad39"),
    ("detailed", 200, "a8b550fc0638aef829898f97258bccaab0bcc5f9add6fe332e4f904e14776cfd"),
    ("ambiguous", 200, "ab5e60b6cb542358f64d138465d245052824eb32dc93fc0caeaef1eef350c8da")])
def test_other_profiles_plans_are_unchanged(profile, count, digest):
    # digests of the plans written before the regional profile existed (every design field, seed 7)
    text = "\n".join(f"{i} {item} {d!r}" for i, item, d in plan_catalogue(count, 7, profile))
    assert hashlib.sha256(text.encode()).hexdigest() == digest
