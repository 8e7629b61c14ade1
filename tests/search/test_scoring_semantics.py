"""The search core (search/) against planted truths and a slow loop reference written from docs/design.md."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.gallery_fixtures import random_params, random_table, reference_distance, row

from fashionsearchnet.errors import SchemaError, UsageError
from fashionsearchnet.search.exact import ExactSearcher, exact_topk, topk_rows
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.request import Request, image_level
from fashionsearchnet.search.scorers import score
from fashionsearchnet.search.table import FeatureTable


def _copy(t: FeatureTable) -> FeatureTable:
    return FeatureTable(t.attr_reps.copy(), t.region_reps.copy(), t.probs.copy())


# ---- requests -------------------------------------------------------------------------------------
def test_parse_plain_and_region(sch):
    r = Request.parse(["collar=hood", " sleeve:color = green", "color=red"], sch)
    assert r.set == (("collar", "hood"), ("color", "red"))
    assert r.region == (("sleeve", "color", "green"),)
    assert not r.is_empty and Request().is_empty
    assert Request.parse(r.to_strings(), sch) == r


@pytest.mark.parametrize(
    "bad, err, needle",
    [
        (["colour=red"], SchemaError, "valid attributes: category, collar, sleeve, color, pattern"),
        (["color=purple"], SchemaError, "valid values: red, blue, green, white"),
        (["hat:color=red"], SchemaError, "valid regions: collar, sleeve, torso"),
        (["collar:pattern=plain"], SchemaError, "valid: color"),
        (["color"], UsageError, "attr=value"),
        (["color=red", "color=blue"], UsageError, "asked twice"),
    ],
)
def test_parse_errors_list_valid_names(sch, bad, err, needle):
    with pytest.raises(err, match=needle):
        Request.parse(bad, sch)


def test_region_request_maps_to_image_level_and_conflict_is_refused(sch):
    assert image_level(Request(region=(("sleeve", "color", "green"),)), sch) == {3: 2}
    with pytest.raises(UsageError, match="no region awareness"):
        image_level(Request(set=(("color", "red"),), region=(("sleeve", "color", "green"),)), sch)


# ---- math -----------------------------------------------------------------------------------------
def test_global_features_matches_hand_loop(params):
    t = random_table(params.schema, 3)
    for s in range(params.lam.shape[0]):
        f = global_representation(t.attr_reps, params.lam, params.W, s)
        for i in range(3):
            x = np.concatenate([t.attr_reps[i, a] * params.lam[s, a] for a in range(5)])
            np.testing.assert_allclose(f[i], x @ params.W[s], rtol=1e-5, atol=1e-5)


REQUESTS = [
    Request(),
    Request(set=(("collar", "hood"),)),
    Request(set=(("color", "green"), ("category", "skirt"))),
    Request(region=(("sleeve", "color", "blue"),)),
    Request(set=(("collar", "v"),), region=(("torso", "pattern", "striped"), ("sleeve", "color", "red"))),
]


@pytest.mark.parametrize("method", ["fsn", "no_aam", "attribute", "fsn_region"])
@pytest.mark.parametrize("req", REQUESTS, ids=lambda r: "|".join(r.to_strings()) or "none")
def test_score_matches_reference_loop(params, method, req):
    sch = params.schema
    t = random_table(sch, 12)
    q = random_table(sch, 2, seed=7)
    d = score(params, q, req, t, method)
    for i in range(2):
        for j in range(12):
            if method == "fsn_region":
                manip = {sch.attr_index(a): sch.value_index(a, v) for a, v in req.set}
                ref = reference_distance(params, row(q, i), row(t, j), manip, method, req.region)
            else:
                manip = image_level(req, sch)
                ref = reference_distance(params, row(q, i), row(t, j), manip, method)
            assert d[i, j] == pytest.approx(ref, rel=1e-4, abs=1e-4)


# ---- planted truths, one per manipulation kind ------------------------------------------------------
def test_plain_query_finds_its_near_duplicate(params):
    t = random_table(params.schema, 20)
    t.attr_reps[13] = t.attr_reps[0] + 1e-3
    s = ExactSearcher(params, t, "fsn")
    assert s.search([0], [Request()], np.arange(1, 20), 3)[0, 0] == 13


def test_attribute_manipulation_finds_the_substituted_item(params):
    sch = params.schema
    t = random_table(sch, 20)
    a, v = sch.attr_index("collar"), sch.value_index("collar", "hood")
    t.attr_reps[5] = t.attr_reps[0] + 1e-3  # the same item (wins without manipulation)
    t.attr_reps[9] = t.attr_reps[0]
    t.attr_reps[9, a] = params.prototypes[a][v]  # the same item with a hood
    s = ExactSearcher(params, t, "fsn")
    g = np.arange(1, 20)
    assert s.search([0], [Request()], g, 1)[0, 0] == 5
    assert s.search([0], [Request(set=(("collar", "hood"),))], g, 1)[0, 0] == 9


def test_two_attribute_manipulation_needs_both(params):
    sch = params.schema
    t = random_table(sch, 20)
    ac, vc = sch.attr_index("collar"), sch.value_index("collar", "v")
    ak, vk = sch.attr_index("color"), sch.value_index("color", "white")
    t.attr_reps[4] = t.attr_reps[0]
    t.attr_reps[4, ac] = params.prototypes[ac][vc]  # only the collar changed
    t.attr_reps[11] = t.attr_reps[4]
    t.attr_reps[11, ak] = params.prototypes[ak][vk]  # collar and color changed
    s = ExactSearcher(params, t, "fsn")
    g = np.arange(1, 20)
    assert s.search([0], [Request(set=(("collar", "v"),))], g, 1)[0, 0] == 4
    assert s.search([0], [Request(set=(("collar", "v"), ("color", "white")))], g, 1)[0, 0] == 11


def test_attribute_baseline_uses_one_hot_blocks(params):
    sch = params.schema
    t = random_table(sch, 10)
    off = sum(sch.num_classes[:3])  # color block
    t.probs[6] = t.probs[0]
    t.probs[6, off:off + 4] = [0, 0, 1, 0]  # green, everything else like the query
    t.probs[3] = t.probs[0] + 0.01
    s = ExactSearcher(params, t, "attribute")
    g = np.arange(1, 10)
    assert s.search([0], [Request()], g, 1)[0, 0] == 3
    assert s.search([0], [Request(set=(("color", "green"),))], g, 1)[0, 0] == 6
    # a region request on a non-region method is the image-level request
    assert s.search([0], [Request(region=(("sleeve", "color", "green"),))], g, 1)[0, 0] == 6


def test_region_manipulation_prefers_the_region_over_the_image_level(params):
    sch = params.schema
    t = random_table(sch, 30)
    p = sch.region_pair_index("sleeve", "color")
    ak, vg = sch.attr_index("color"), sch.value_index("color", "green")
    green = params.prototypes[ak][vg]
    t.attr_reps[7], t.region_reps[7] = t.attr_reps[0], t.region_reps[0]
    t.region_reps[7, p] = green  # green sleeves, the rest like the query
    t.attr_reps[8], t.region_reps[8] = t.attr_reps[0], t.region_reps[0]
    t.attr_reps[8, ak] = green  # a green garment, sleeves like the query
    req = Request(region=(("sleeve", "color", "green"),))
    g = np.arange(1, 30)
    assert ExactSearcher(params, t, "fsn_region").search([0], [req], g, 1)[0, 0] == 7
    assert ExactSearcher(params, t, "fsn").search([0], [req], g, 1)[0, 0] == 8  # mapped to image-level color


def test_fsn_region_scores_plain_requests_with_the_global_representation(params):
    """As the gallery does: region scoring only for requests naming a region; plain ones are fsn's."""
    sch = params.schema
    t = random_table(sch, 40)
    g = np.arange(1, 40)
    reg = ExactSearcher(params, t, "fsn_region")
    plain = [Request(), Request(set=(("color", "green"),))]
    for req in plain:
        want = np.argsort(score(params, t.take([0]), req, t, "fsn", g)[0], kind="stable")[:10]
        assert np.array_equal(reg.search([0], [req], g, 10)[0], g[want])
        other = np.argsort(score(params, t.take([0]), req, t, "fsn_region", g)[0], kind="stable")[:10]
        assert not np.array_equal(g[other], g[want])  # the two scorings do rank this table differently


def test_fsn_region_is_the_global_distance_plus_scaled_region_terms_by_hand(params):
    """Hand computation with lam = 1 and W = identity (the global representation is the concatenation):
    fsn_region = |F(q) - F(g)|^2 + global_scale * sum_p c_p |r_p(q) - r_p(g)|^2 / scale_p (module doc)."""
    from fashionsearchnet.search.params import RegionTerms, SearchParams

    sch = params.schema
    A, D, P = len(sch.attributes), params.dim, len(sch.region_pairs)
    eye = np.broadcast_to(np.eye(A * D, dtype=np.float32), (A + 1, A * D, A * D)).copy()
    scales = np.arange(1.0, P + 1.0)  # pair p's scale p + 1
    terms = RegionTerms(weight=2.0, primary_weight=0.5, global_scale=4.0, pair_scales=scales)
    hp = SearchParams(sch, params.prototypes, np.ones((A + 1, A), np.float32), eye, 0.25, {}, terms)
    t = random_table(sch, 1)
    q = FeatureTable(t.attr_reps + 1.0, t.region_reps + 1.0, t.probs)  # every representation off by 1
    pc = sch.region_pair_index("collar", "color")
    ak, vr = sch.attr_index("color"), sch.value_index("color", "red")
    t.region_reps[0, pc] = params.prototypes[ak][vr] + 0.5  # the asked pair: 0.5 from the red prototype
    d = score(hp, q, Request(region=(("collar", "color", "red"),)), t, "fsn_region", np.array([0]))[0, 0]
    glob = A * D * 1.0  # no image-level change for a collar request
    asked = 2.0 * 4.0 * (D * 0.25) / scales[pc]
    rest = sum(0.25 * 2.0 * 4.0 * D * 1.0 / scales[p] for p in range(P) if p != pc)
    assert d == pytest.approx(glob + asked + rest, rel=1e-6)
    # a torso request: the image-level colour is substituted in the global term, the pair weighs primary_weight
    pt = sch.region_pair_index("torso", "color")
    t2 = FeatureTable(q.attr_reps.copy(), q.region_reps.copy(), q.probs)
    t2.attr_reps[0, ak] = params.prototypes[ak][vr] + 1.0  # its colour rep is 1 from red, the rest equal
    t2.region_reps[0, pt] = params.prototypes[ak][vr]
    d2 = score(hp, q, Request(region=(("torso", "color", "red"),)), t2, "fsn_region", np.array([0]))[0, 0]
    assert d2 == pytest.approx(D * 1.0, rel=1e-6)  # only the global colour block differs; the torso term is 0
    t2.region_reps[0, pt] += 1.0
    d3 = score(hp, q, Request(region=(("torso", "color", "red"),)), t2, "fsn_region", np.array([0]))[0, 0]
    assert d3 - d2 == pytest.approx(0.5 * 4.0 * D / scales[pt], rel=1e-6)


def test_uncalibrated_params_score_torso_requests_as_fsn_plus_untouched_pairs(params):
    """Without stored terms: primary_weight 0, so a torso request differs from fsn's image-level request only by
    the untouched pairs (region_weight x weight); with region_weight 0 it is fsn exactly."""
    from fashionsearchnet.search.params import SearchParams

    sch = params.schema
    zero = SearchParams(sch, params.prototypes, params.lam, params.W, 0.0)
    t = random_table(sch, 25)
    req = Request(region=(("torso", "color", "red"),))
    g = np.arange(25)
    a = score(zero, t.take([0, 3]), req, t, "fsn_region", g)
    b = score(zero, t.take([0, 3]), Request(set=(("color", "red"),)), t, "fsn", g)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_primary_region_request_also_substitutes_image_level(params):
    sch = params.schema
    t = random_table(sch, 30)
    ak, vr = sch.attr_index("color"), sch.value_index("color", "red")
    red = params.prototypes[ak][vr]
    p = sch.region_pair_index("torso", "color")
    t.attr_reps[12], t.region_reps[12] = t.attr_reps[0], t.region_reps[0]
    t.region_reps[12, p] = red
    t.attr_reps[12, ak] = red  # red torso and red garment: distance 0
    t.attr_reps[13], t.region_reps[13] = t.attr_reps[0], t.region_reps[0]
    t.region_reps[13, p] = red  # red torso but the image-level color unchanged
    # a non-primary region does not touch the image level
    p2 = sch.region_pair_index("sleeve", "color")
    t.region_reps[14], t.attr_reps[14] = t.region_reps[0], t.attr_reps[0]
    t.region_reps[14, p2] = red
    req = Request(region=(("torso", "color", "red"),))
    d = score(params, t.take([0]), req, t, "fsn_region", np.array([12, 13]))[0]
    assert d[0] == pytest.approx(0.0, abs=1e-6) and d[1] > 0.1
    d2 = score(params, t.take([0]), Request(region=(("sleeve", "color", "red"),)), t, "fsn_region", np.array([14]))
    assert d2[0, 0] == pytest.approx(0.0, abs=1e-6)


# ---- ranking mechanics ------------------------------------------------------------------------------
def test_ties_go_to_the_smaller_row_whatever_the_gallery_order(params):
    t = random_table(params.schema, 40)
    for r in (31, 3, 17):
        t.attr_reps[r] = t.attr_reps[0]
    s = ExactSearcher(params, t, "fsn")
    g = np.random.default_rng(0).permutation(np.arange(40))
    assert list(s.search([0], [Request()], g, 4)[0]) == [0, 3, 17, 31]  # the query itself stays in (ADDE)


def test_topk_rows_with_partition_path_equals_full_sort():
    rng = np.random.default_rng(3)
    d = rng.integers(0, 5, size=(3, 500)).astype(np.float64)  # many ties
    rows = rng.permutation(500)
    got = topk_rows(d, rows, 7)
    for i in range(3):
        ref = sorted(range(500), key=lambda j: (d[i, j], rows[j]))[:7]
        assert list(got[i]) == [rows[j] for j in ref]


def test_searcher_groups_mixed_requests_like_one_by_one(params):
    t = random_table(params.schema, 50)
    s = ExactSearcher(params, t, "fsn")
    qs = [0, 1, 2, 3]
    reqs = [REQUESTS[1], Request(), REQUESTS[1], REQUESTS[2]]
    g = np.arange(4, 50)
    batch = s.search(qs, reqs, g, 5)
    for i, (q, r) in enumerate(zip(qs, reqs)):
        assert list(batch[i]) == list(s.search([q], [r], g, 5)[0])


@pytest.mark.parametrize("k, msg", [(0, "positive"), (-1, "positive"), (47, "larger than the gallery")])
def test_bad_k(params, k, msg):
    s = ExactSearcher(params, random_table(params.schema, 50), "fsn")
    with pytest.raises(UsageError, match=msg):
        s.search([0], [Request()], np.arange(4, 50), k)


def test_empty_gallery_and_unknown_method(params):
    t = random_table(params.schema, 5)
    with pytest.raises(UsageError, match="empty"):
        ExactSearcher(params, t, "fsn").search([0], [Request()], np.array([], np.int64), 1)
    with pytest.raises(UsageError, match="valid: fsn, fsn_region, no_aam, attribute"):
        ExactSearcher(params, t, "amnet")


@pytest.mark.parametrize("method", ["fsn", "attribute", "fsn_region"])
@pytest.mark.parametrize("req", [REQUESTS[0], REQUESTS[2], REQUESTS[4]], ids=["none", "two", "region"])
@pytest.mark.parametrize("subset", ["all", "most", "few"])
def test_exact_topk_equals_float64_score_and_sort(params, method, req, subset):
    """The float32-screened top-k equals score() + topk_rows exactly (rows, order, distances), ties included."""
    t = random_table(params.schema, 400, seed=5)
    for r in (50, 7, 300, 301):  # exact duplicates of row 3: four-way ties
        t.attr_reps[r], t.region_reps[r], t.probs[r] = t.attr_reps[3], t.region_reps[3], t.probs[3]
    rows = {"all": np.arange(400), "most": np.delete(np.arange(400)[::-1], range(100, 150)),
            "few": np.random.default_rng(2).choice(400, 60, replace=False)}[subset]
    rows = np.union1d(rows, [7, 50, 300, 301]) if subset == "few" else rows
    q = t.take([3, 10, 99])
    got_rows, got_d = exact_topk(params, q, req, t, method, rows, 12)
    ref_d = score(params, q, req, t, method, rows)
    ref_rows = topk_rows(ref_d, rows, 12)
    np.testing.assert_array_equal(got_rows, ref_rows)
    pos = {r: j for j, r in enumerate(rows)}
    for i in range(3):
        np.testing.assert_allclose(got_d[i], ref_d[i, [pos[r] for r in ref_rows[i]]], rtol=1e-12, atol=1e-12)
    if req.is_empty:  # the query's four duplicates tie at distance 0 and come in row order
        dups = [r for r in got_rows[0] if r in (3, 7, 50, 300, 301)]
        assert dups == sorted(dups) and len(dups) >= 4 and list(got_d[0, :4]) == [0.0] * 4


def test_project_rows_in_small_blocks_equals_global_representation(params):
    t = random_table(params.schema, 21)  # 21 rows: two full blocks of 8 and a partial one
    for s in range(params.lam.shape[0]):
        np.testing.assert_allclose(global_representation(t.attr_reps, params.lam, params.W, s, kernel="blocks"),
                                   global_representation(t.attr_reps, params.lam, params.W, s), rtol=1e-5, atol=1e-6)
    assert global_representation(t.attr_reps[:0], params.lam, params.W, 0, kernel="blocks").shape == (0, params.W.shape[2])


def test_project_rows_of_a_row_do_not_depend_on_its_neighbours(params):
    """Bit-identical features for a row whatever subset it is projected with (a query and its candidates): the
    exact-zero distance of an image to its twin rests on this."""
    t = random_table(params.schema, 50, seed=3)
    full = global_representation(t.attr_reps, params.lam, params.W, 0, kernel="blocks")
    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 8, 9, 17):
        sel = rng.choice(50, n, replace=False)
        assert np.array_equal(global_representation(t.attr_reps[sel], params.lam, params.W, 0, kernel="blocks"), full[sel])


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_exact_topk_screening_bound_holds_for_badly_scaled_projections(sch, scale):
    """The float32 screen goes through the representations (reps . v); its error bound must hold whatever W's
    scale, and near-duplicates (1e-4 apart) must come in the float64 order."""
    p = random_params(sch, seed=3)
    p = type(p)(sch, p.prototypes, p.lam, (p.W * scale).astype(np.float32), p.region_weight)
    t = random_table(sch, 300, seed=4)
    for j, r in enumerate((40, 41, 42, 43)):
        t.attr_reps[r] = t.attr_reps[5] + 1e-4 * (j + 1)
    for req in (Request(), REQUESTS[2]):
        got, _ = exact_topk(p, t.take([5, 6]), req, t, "fsn", np.arange(300), 10)
        np.testing.assert_array_equal(got, topk_rows(score(p, t.take([5, 6]), req, t, "fsn"), np.arange(300), 10))
