"""Evaluation protocols on hand-made tiny galleries whose right answers are worked out by hand."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.schema import Attribute, Region, Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.evaluation.protocol import build_task, evaluate, markdown_table

SCHEMA = Schema(
    (Attribute("color", ("r", "g", "b")), Attribute("shape", ("s", "l"))),
    (Region("sleeve", ("shape",), ("color",)), Region("torso", ("color",), ("color",), ("sleeve",), True)),
)
R, G, B, S, L, U = 0, 1, 2, 0, 1, -1


def make(rows: list[tuple], region: dict[str, list[int]] | None = None, items=None) -> Dataset:
    """rows: (split, color, shape)."""
    n = len(rows)
    return Dataset(
        root=Path("/nonexistent"), schema=SCHEMA, images=[Path(f"/nonexistent/{i}.jpg") for i in range(n)],
        splits=np.array([r[0] for r in rows]), item_ids=items or [None] * n,
        labels=np.array([[r[1], r[2]] for r in rows], np.int32),
        region_labels={k: np.array(v, np.int32) for k, v in (region or {}).items()},
    )


class FixedOrder:
    """A searcher that ranks the gallery by a fixed preference list, per request if given."""

    def __init__(self, order, by_request=None):
        self.order, self.by_request = list(order), by_request or {}
        self.calls = []

    def search(self, query_rows, requests, gallery_rows, k):
        self.calls.append((list(query_rows), list(requests), list(gallery_rows)))
        out = []
        for q, req in zip(query_rows, requests):
            pref = self.by_request.get((int(q), req), self.order)
            ranked = [r for r in pref if r in set(gallery_rows)] + [r for r in gallery_rows if r not in pref]
            out.append(ranked[:k])
        return np.array(out, np.int64)


def test_query_protocol_hits_and_unknown_result_labels():
    # gallery: 0 (r,s) 1 (g,s) 2 (r,l) 3 (r,?)  query: 4 (r,s)
    ds = make([("gallery", R, S), ("gallery", G, S), ("gallery", R, L), ("gallery", R, U), ("query", R, S)])
    res = evaluate(ds, {"m": FixedOrder([1, 2, 3, 0])}, protocols=["query"], ks=(1, 3, 4))
    # row 3 knows no shape, so it does not have the query's shape: first hit is row 0 at rank 4
    assert res["query"]["m"] == {"top1": 0.0, "top3": 0.0, "top4": 100.0, "prec1": 0.0, "prec3": 0.0, "prec4": 25.0,
                                 "n": 1}


def test_manipulation_protocol_targets_and_skips():
    # gallery colours {r, g}: 'b' is absent from the gallery, so no color=b request; shape l exists
    ds = make([("gallery", R, S), ("gallery", G, S), ("gallery", R, L), ("query", R, S), ("query", G, U)])
    task = build_task(ds, "manipulation")
    got = {(int(q), r.set) for q, r in zip(task.query_rows, task.requests)}
    # query 3 (r,s): color->g, shape->l ; query 4 (g,?): color->r only (its shape is unknown)
    assert got == {(3, (("color", "g"),)), (3, (("shape", "l"),)), (4, (("color", "r"),))}
    order = {(3, task.requests[0]): [1, 0, 2]}  # color->g: row 1 first -> hit at 1
    s = FixedOrder([0, 1, 2], by_request=order)
    res = evaluate(ds, {"m": s}, protocols=["manipulation"], ks=(1, 2))["manipulation"]["m"]
    # q3 color->g: [1,..] hit@1.  q3 shape->l: order [0,1,2]: row 2 is (r,l): hit@3 only.
    # q4 color->r (shape not compared): [0,..] row 0 is (r,s): hit@1.
    assert res["n"] == 3
    assert res["top1"] == pytest.approx(100 * 2 / 3, abs=1e-2)
    assert res["top2"] == pytest.approx(100 * 2 / 3, abs=1e-2)


def test_unsatisfiable_targets_are_left_out():
    # the only (g, l) would be the target of query (r,l)->g, but no gallery item is (g,l)
    ds = make([("gallery", G, S), ("gallery", R, S), ("query", R, L)])
    task = build_task(ds, "manipulation")
    assert [r.set for r in task.requests] == [(("shape", "s"),)]


def test_region_protocol_keeps_other_regions_and_primary_changes_image_label():
    # query 0: torso r, sleeve r.   gallery: 1 torso r sleeve g (the answer to sleeve->g)
    # 2 torso g sleeve g (the answer to torso->g: image colour changes with the primary region)
    # 3 torso g sleeve r
    rows = [("query", R, S), ("gallery", R, S), ("gallery", G, S), ("gallery", G, S)]
    region = {"sleeve:color": [R, G, G, R], "torso:color": [R, R, G, G]}
    ds = make(rows, region)
    task = build_task(ds, "region")
    reqs = [r.region for r in task.requests]
    assert reqs == [(("sleeve", "color", "g"),), (("torso", "color", "g"),)]
    # torso->g target: image colour g, torso g, sleeve stays r -> only row 3
    i = reqs.index((("torso", "color", "g"),))
    assert task.targets[i].tolist() == [G, S]
    s = FixedOrder([2, 3, 1])
    res = evaluate(ds, {"m": s}, protocols=["region"], ks=(1, 2, 3))["region"]["m"]
    # sleeve->g wants row 1 (rank 3); torso->g wants row 3 (rank 2)
    assert (res["top1"], res["top2"], res["top3"], res["n"]) == (0.0, 50.0, 100.0, 2)


def test_item_protocol_needs_the_same_item():
    rows = [("query", R, S), ("gallery", G, S), ("gallery", G, S), ("gallery", R, S)]
    ds = make(rows, items=["X", "Y", "X", "X"])
    task = build_task(ds, "item")
    assert [r.set for r in task.requests] == [(("color", "g"),)]  # row 3 has the same labels: no request
    res = evaluate(ds, {"m": FixedOrder([1, 2, 3])}, protocols=["item"], ks=(1, 2))["item"]["m"]
    assert (res["top1"], res["top2"]) == (0.0, 100.0)  # row 1 is (g,s) but another item


def test_adde_keeps_query_in_gallery_and_ndcg_by_hand():
    rows = [("query", R, S), ("gallery", G, S), ("gallery", G, S), ("gallery", R, L)]
    ds = make(rows)
    s = FixedOrder([0, 3, 1, 2])
    res = evaluate(ds, {"m": s}, protocols=["adde"], ks=(1, 2, 3))["adde"]["m"]
    assert 0 in s.calls[0][2]  # the query row is searchable
    # requests: color->g (relevant rows 1,2 at ranks 3,4), shape->l (relevant row 3 at rank 2); color->b absent
    assert res["n"] == 2
    assert res["top1"] == 0.0 and res["top2"] == 50.0 and res["top3"] == 100.0
    ndcg3_g = (1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg3_l = (1 / math.log2(3)) / 1
    assert res["ndcg3"] == pytest.approx(100 * (ndcg3_g + ndcg3_l) / 2, abs=1e-2)


def test_sampling_is_deterministic_and_table_renders():
    rows = [("gallery", R, S), ("gallery", G, S)] + [("query", R, S)] * 10
    ds = make(rows)
    a = build_task(ds, "query", seed=3, max_queries=4).query_rows
    b = build_task(ds, "query", seed=3, max_queries=4).query_rows
    c = build_task(ds, "query", seed=4, max_queries=4).query_rows
    assert a.tolist() == b.tolist() and len(a) == 4 and a.tolist() != c.tolist()
    res = evaluate(ds, {"m": FixedOrder([0, 1])}, protocols=["query"], seed=3, max_queries=4)
    assert "| query | m | 100.0 |" in markdown_table(res)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UsageError, match="--max-queries"):
            build_task(ds, "query", seed=3, max_queries=bad)


def test_region_breakdown_splits_two_tone_from_one_colour_targets():
    # query 0: torso r, sleeve g (two-tone).  sleeve->r makes it one colour (target row 1);
    # torso->g makes it one colour too (row 2); sleeve->b would be two-tone (row 3: torso r, sleeve b)
    rows = [("query", R, S), ("gallery", R, S), ("gallery", G, S), ("gallery", R, S)]
    region = {"sleeve:color": [G, R, G, B], "torso:color": [R, R, G, R]}
    ds = make(rows, region)
    differ, match = build_task(ds, "region_differ"), build_task(ds, "region_match")
    assert [r.region for r in differ.requests] == [(("sleeve", "color", "b"),)]
    assert sorted(r.region for r in match.requests) == [(("sleeve", "color", "r"),), (("torso", "color", "g"),)]
    assert len(differ.requests) + len(match.requests) == len(build_task(ds, "region").requests)
    res = evaluate(ds, {"m": FixedOrder([3, 1, 2])}, protocols=["region_differ", "region_match"], ks=(1, 2))
    # differ: sleeve->b wants row 3 (rank 1).  match: sleeve->r wants row 1 (rank 2), torso->g row 2 (rank 3)
    assert res["region_differ"]["m"]["top1"] == 100.0
    assert (res["region_match"]["m"]["top1"], res["region_match"]["m"]["top2"]) == (0.0, 50.0)


def test_grouped_evaluation_partitions_the_pairs_by_requested_attribute():
    from fashionsearchnet.evaluation.protocol import evaluate_grouped, requested_attribute

    ds = make([("gallery", R, S), ("gallery", G, S), ("gallery", R, L), ("query", R, S), ("query", G, U)])
    task = build_task(ds, "manipulation")
    order = {(3, task.requests[0]): [1, 0, 2]}
    s = FixedOrder([0, 1, 2], by_request=order)
    res = evaluate_grouped(ds, {"m": s}, "manipulation", requested_attribute, ks=(1, 2))
    # color: q3 color->g hit@1, q4 color->r hit@1; shape: q3 shape->l hit only at rank 3 (by hand, as above)
    # precision@2: q3 -> [1 (g,s) hit, 0 miss], q4 -> [0 (r,s) hit, 1 miss]: 50 each
    assert res == {"color": {"m": {"top1": 100.0, "top2": 100.0, "prec1": 100.0, "prec2": 50.0, "n": 2}},
                   "shape": {"m": {"top1": 0.0, "top2": 0.0, "prec1": 0.0, "prec2": 0.0, "n": 1}}}
    assert len(s.calls) == 1  # one search for all groups


def test_precision_counts_every_hit_and_stops_at_the_gallery_size():
    # gallery 0 (r,s) 1 (g,s) 2 (r,l) 3 (r,s); queries 4 (r,s), 5 (g,s)
    ds = make([("gallery", R, S), ("gallery", G, S), ("gallery", R, L), ("gallery", R, S), ("query", R, S),
               ("query", G, S)])
    res = evaluate(ds, {"m": FixedOrder([0, 2, 3, 1])}, protocols=["query"], ks=(1, 2, 3, 4, 5))["query"]["m"]
    # q4 (r,s): [0 hit, 2 miss, 3 hit, 1 miss]; q5 (g,s): [0, 2, 3 miss, 1 hit]
    # prec4 = (2/4 + 1/4) / 2 = 37.5, prec3 = (2/3 + 0) / 2, prec2 = (1/2 + 0) / 2
    assert (res["prec1"], res["prec2"], res["prec3"], res["prec4"]) == (50.0, 25.0, pytest.approx(100 / 3, abs=1e-2),
                                                                        37.5)
    assert (res["top1"], res["top3"], res["top4"], res["top5"]) == (50.0, 50.0, 100.0, 100.0)
    assert "prec5" not in res  # 4 gallery items: the 5th "result" is padding
    table = markdown_table({"query": {"m": res}}, ks=(1, 4, 5), metric="prec")
    assert "| query | m | 50.0 | 37.5 | nan | 2 |" in table
