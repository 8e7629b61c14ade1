"""The ambiguous synthetic profile: the hard profile's labels, with upper-body close-ups and overlapping shades."""
from __future__ import annotations

import numpy as np

from fashionsearchnet.data.synth import CLOSE_UP, COLORS, DETAILS, FINE, SHADE_SPREAD, Design, generate, make_design, render
from fashionsearchnet.data.synth.drawing import shade_bgr
from fashionsearchnet.data.synth.photography import framing


def test_same_designs_labels_and_splits_as_the_hard_profile_other_pixels(tmp_path):
    hard = generate(tmp_path / "h", 40, seed=2, size=48, profile="hard")
    amb = generate(tmp_path / "a", 40, seed=2, size=48, profile="ambiguous")
    assert (hard / "attributes.csv").read_text() == (amb / "attributes.csv").read_text()
    differ = [(hard / "images" / p.name).read_bytes() != p.read_bytes() for p in sorted((amb / "images").iterdir())]
    assert sum(differ) >= 30  # shades differ in nearly every design (a few shades are clipped to the same colour)


def test_designs_are_the_hard_ones_with_shades_spread_past_their_range():
    shades = []
    for k in range(300):
        h = make_design(np.random.default_rng([7, k]), "hard")
        a = make_design(np.random.default_rng([7, k]), "ambiguous")
        assert (a.category, a.collar, a.sleeve, a.torso_color, a.details) == (h.category, h.collar, h.sleeve,
                                                                              h.torso_color, h.details)
        np.testing.assert_allclose(a.shade, [-SHADE_SPREAD + (1 + 2 * SHADE_SPREAD) * x for x in h.shade])
        shades.append(a.shade)
    s = np.array(shades)
    assert s.min() < -0.2 and s.max() > 1.2  # past the named range on both sides
    assert 0.2 < ((s < 0) | (s > 1)).any(axis=1).mean()  # most designs have some channel outside (1 - 0.625^3)


def test_an_extended_shade_stops_at_valid_colours():
    # white's saturation range is 0-18: shade -0.3 asks for -5.4, which must read as 0 (not wrap to a saturated 250)
    assert np.allclose(shade_bgr("white", (0.5, -0.3, 1.3)), 255)
    # navy's and blue's value ranges are disjoint; spread, they overlap (the point of the spread)
    (_, _), (_, _), (bv0, bv1) = COLORS["blue"]
    (_, _), (_, _), (nv0, nv1) = COLORS["navy"]
    assert nv1 < bv0 and nv1 + SHADE_SPREAD * (nv1 - nv0) > bv0 - SHADE_SPREAD * (bv1 - bv0)


def test_close_ups_are_a_quarter_and_magnify_about_the_upper_body():
    scales = np.array([np.sqrt(abs(np.linalg.det(framing(256, np.random.default_rng(k), CLOSE_UP)[:, :2])))
                       for k in range(800)])
    close = scales > 1.3
    assert abs(close.mean() - CLOSE_UP) < 0.05
    assert scales[~close].max() <= 1.12 and scales[close].min() >= 1.45
    # close_up 0 draws exactly the whole-garment framing, as before close-ups existed
    a, b = framing(256, np.random.default_rng(3), 0.0), framing(256, np.random.default_rng(3), 0.0)
    assert np.array_equal(a, b) and np.sqrt(abs(np.linalg.det(a[:, :2]))) <= 1.12


def _dress():
    fine = {"fit": "regular", "hem": "split", "fabric": "plain", "cuff": "band"}
    return Design("dress", "round", "long", "blue", "solid", "blue", "solid", "blue", (0.5, 0.5, 0.5), 0.05,
                  tuple((k, "none") for k in DETAILS) + tuple((k, fine[k]) for k in FINE), "yellow")


def test_a_close_up_cuts_the_garment_at_the_bottom_edge_hiding_hem_and_cuffs():
    cut = {}
    for close_up in (0.0, 1.0):
        labs = [render(_dress(), 64, np.random.default_rng(k), close_up)[1] for k in range(12)]
        cut[close_up] = np.mean([(lab[-2:] > 0).any() for lab in labs])
        if close_up:  # the garment fills the frame's bottom rows: its hem (and the long sleeves' ends) are below
            assert all((lab[-1] == 1).sum() > 8 for lab in labs)
    assert cut[1.0] == 1.0 and cut[0.0] < 0.5
