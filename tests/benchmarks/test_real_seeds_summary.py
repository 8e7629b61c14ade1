"""benchmarks/experiments/seeds/real_seeds.py: medians, ranges and paired (same-seed) differences over seeds, by hand."""
from __future__ import annotations

import pytest

from benchmarks.experiments.seeds import real_seeds


def _planted() -> dict[int, dict]:
    # top30 of (attribute, attribute_eq, no_aam, fsn) per seed; top1 = top30 / 2; every protocol alike
    t30 = {0: (60.0, 70.0, 80.0, 75.0), 1: (64.0, 66.0, 78.0, 79.0), 2: (62.0, 71.0, 85.0, 74.0)}
    return {s: {p: {m: {"top1": v / 2, "top30": v, "n": 10} for m, v in zip(real_seeds.METHODS, t30[s])}
                for p in real_seeds.PROTOCOLS} for s in t30}


def test_median_and_range_per_method():
    m = real_seeds.summarise(_planted())["methods"]
    assert m["manipulation/fsn/top30"] == {"median": 75.0, "min": 74.0, "max": 79.0, "values": [75.0, 79.0, 74.0]}
    assert m["item/no_aam/top1"]["median"] == pytest.approx(40.0)  # 80/2, 78/2, 85/2 -> 40
    assert m["query/attribute_eq/top30"]["min"] == 66.0


def test_differences_are_paired_by_seed_not_differences_of_medians():
    d = real_seeds.summarise(_planted())["differences"]
    # fsn - attribute per seed: +15, +15, +12 -> median 15, while the medians differ by 75 - 62 = 13
    # fsn - no_aam per seed: -5, +1, -11
    assert d["manipulation/fsn-no_aam/top30"] == {"median": -5.0, "min": -11.0, "max": 1.0, "values": [-5.0, 1.0, -11.0]}
    assert d["manipulation/fsn-attribute/top30"]["median"] == 15.0
    assert d["manipulation/fsn-attribute_eq/top1"]["values"] == [2.5, 6.5, 1.5]
