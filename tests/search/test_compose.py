"""Composed queries (issue 24): distances against hand computations written from the docstring of
search/compose.py (per-pair loops, no shared code with the scorers), exact top-k against score + sort, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.support.gallery_fixtures import random_table, structured_table

from fashionsearchnet.errors import RequestError
from fashionsearchnet.search.compose import require_description
from fashionsearchnet.search.exact import ExactSearcher, exact_topk, topk_rows
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.scorers import score


def hand_global(params, g_reps, described: dict[int, int], mode: str) -> float:
    """Mean over the described attributes a of |F_a(q) - F_a(g)|^2 with F_s(x) = sum_b lam[s,b] x_b W_s[b-block]."""
    A, D = params.lam.shape[1], params.dim
    neutral = [params.prototypes[b].astype(np.float64).mean(0) for b in range(A)]
    total = 0.0
    for a in described:
        s = 1 + a
        fq = np.zeros(params.W.shape[2])
        fg = np.zeros(params.W.shape[2])
        for b in range(A):
            if mode == "omit" and b not in described:
                continue
            qb = params.prototypes[b][described[b]].astype(np.float64) if b in described else neutral[b]
            block = params.W[s, b * D:(b + 1) * D].astype(np.float64)
            fq += params.lam[s, b] * qb @ block
            fg += params.lam[s, b] * g_reps[b].astype(np.float64) @ block
        total += float(((fq - fg) ** 2).sum())
    return total / len(described)


def hand_region(params, g_attr, g_region, attr_vals: dict[int, int], pair_vals: dict[int, int], mode: str,
                primary_pairs: set[int]) -> float:
    """fsn_region composed: the global term over the image-level values (``hand_global``) plus, per region pair,
    c_p |q_p - g_p|^2 with c_p = weight (asked collar/sleeve pair), primary_weight (asked torso pair) or
    region_weight x weight (untouched; 0 when omitted), times global_scale / pair_scale."""
    from fashionsearchnet.search.scorers import region_terms
    sch, terms = params.schema, region_terms(params)
    d = hand_global(params, g_attr, attr_vals, mode)
    for p, (reg, attr) in enumerate(sch.region_pairs):
        protos = params.region_prototype(reg, attr)
        q = protos[pair_vals[p]] if p in pair_vals else protos.astype(np.float64).mean(0)
        if p in pair_vals:
            c = terms.primary_weight if p in primary_pairs else terms.weight
        else:
            c = 0.0 if mode == "omit" else params.region_weight * terms.weight
        d += c * terms.global_scale / terms.pair_scales[p] * float(((q - g_region[p].astype(np.float64)) ** 2).sum())
    return d


@pytest.mark.parametrize("mode", ["omit", "neutral"])
@pytest.mark.parametrize("sets", [["color=red"], ["category=skirt", "color=blue"], ["collar=v", "sleeve=long", "pattern=striped"]])
def test_global_composed_distance_is_the_hand_computation(params, mode, sets):
    p = dataclasses.replace(params, compose_unset=mode)
    t = random_table(params.schema, 30, seed=3)
    req = Request.parse(sets, params.schema)
    described = {params.schema.attr_index(a): params.schema.value_index(a, v) for a, v in req.set}
    got = score(p, None, req, t, "fsn")[0]
    want = [hand_global(p, t.attr_reps[i], described, mode) for i in range(len(t))]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # eq. 7's product runs in float32
    assert score(p, None, req, t, "no_aam")[0] == pytest.approx(got)  # same space, other features


@pytest.mark.parametrize("mode", ["omit", "neutral"])
def test_region_composed_distance_is_the_hand_computation(params, mode):
    sch = params.schema
    p = dataclasses.replace(params, compose_unset=mode)
    t = random_table(sch, 25, seed=4)
    req = Request.parse(["category=dress", "sleeve:color=green", "torso:pattern=striped"], sch)
    attr_vals = {sch.attr_index("category"): 0, sch.attr_index("pattern"): 1}  # torso is primary: image level too
    pair_vals = {sch.region_pair_index("sleeve", "color"): 2, sch.region_pair_index("torso", "pattern"): 1}
    got = score(p, None, req, t, "fsn_region")[0]
    primary = {sch.region_pair_index("torso", "pattern")}
    want = [hand_region(p, t.attr_reps[i], t.region_reps[i], attr_vals, pair_vals, mode, primary)
            for i in range(len(t))]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # eq. 7's product runs in float32


def test_attribute_baseline_ranks_by_the_joint_probability_of_the_described_values(params):
    sch = params.schema
    t = random_table(sch, 40, seed=6)
    req = Request.parse(["color=green", "sleeve=long"], sch)
    off = sch.class_offsets
    pc = t.probs[:, off[sch.attr_index("color")] + 2].astype(np.float64)
    ps = t.probs[:, off[sch.attr_index("sleeve")] + 1].astype(np.float64)
    np.testing.assert_allclose(score(params, None, req, t, "attribute")[0], -np.log(pc) - np.log(ps), rtol=1e-12)
    rows, _ = exact_topk(params, None, req, t, "attribute", np.arange(40), 5)
    assert list(rows[0]) == list(np.argsort(-(pc * ps), kind="stable")[:5])


@pytest.mark.parametrize("method", ["fsn", "attribute", "fsn_region"])
@pytest.mark.parametrize("mode", ["omit", "neutral"])
def test_exact_topk_of_a_composed_query_equals_score_and_sort(params, method, mode):
    p = dataclasses.replace(params, compose_unset=mode)
    t = random_table(params.schema, 300, seed=7)
    for r in (40, 90):  # duplicates of row 5: ties go to the smaller row
        t.attr_reps[r], t.region_reps[r], t.probs[r] = t.attr_reps[5], t.region_reps[5], t.probs[5]
    req = Request.parse(["color=white", "sleeve:pattern=plain"], params.schema)
    rows = np.delete(np.arange(300), range(100, 130))
    got_rows, got_d = exact_topk(p, None, req, t, method, rows, 15)
    ref = score(p, None, req, t, method, rows)
    np.testing.assert_array_equal(got_rows, topk_rows(ref, rows, 15))
    s = ExactSearcher(p, t, method)
    np.testing.assert_array_equal(s.compose([req], rows, 15), got_rows)


def test_a_composed_query_finds_the_described_items(params):
    """Planted truth: in a table whose representations sit near their value's prototype, the top results of
    'category=skirt color=green' are skirts that are green."""
    t = structured_table(params, 600, seed=8)
    sch = params.schema
    vals = np.stack([np.argmin(((t.attr_reps[:, a, None, :] - params.prototypes[a][None]) ** 2).sum(-1), 1)
                     for a in range(len(sch.attributes))], 1)  # the value each row was planted with (nearest)
    req = Request.parse(["category=skirt", "color=green"], sch)
    for method in ("fsn", "fsn_region"):
        rows, _ = exact_topk(params, None, req, t, method, np.arange(600), 10)
        hits = (vals[rows[0], 0] == 2) & (vals[rows[0], 3] == 2)
        assert hits.mean() >= 0.8, (method, hits)


def test_no_description_is_refused_with_the_valid_attributes(params):
    with pytest.raises(RequestError, match="valid attributes: category, collar, sleeve, color, pattern") as e:
        require_description(Request(), params.schema, source="sets")
    assert e.value.valid == {"attributes": ["category", "collar", "sleeve", "color", "pattern"]}
    assert "\n" not in str(e.value) and "sets attr=value" in str(e.value)
    with pytest.raises(RequestError):
        score(params, None, Request(), random_table(params.schema, 3), "fsn")
