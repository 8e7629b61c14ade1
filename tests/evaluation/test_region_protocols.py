"""region_part / region_primary on hand-made galleries (item_id exclusion, satisfiability by another item, the
two-tone selection), and the bad input of an explicitly asked protocol the data cannot support."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashionsearchnet.errors import UsageError
from fashionsearchnet.evaluation.protocol import PROTOCOLS, build_task, evaluate, own_item_only
from tests.evaluation.test_protocol import B, G, L, R, S, FixedOrder, make

# rows: (split, color, shape); region truth sleeve:color / torso:color; item ids
#  0 query   (r,s) torso r sleeve r  item A
#  1 gallery (r,s) torso r sleeve g  item A   <- the query's own variant: answers sleeve->g, never a region_part hit
#  2 gallery (r,s) torso r sleeve g  item C   <- another product answering sleeve->g
#  3 gallery (r,s) torso r sleeve b  item A   <- only the own item answers sleeve->b: pair left out of region_part
#  4 gallery (g,s) torso g sleeve r  item A   <- answers torso->g (region_primary: the own item counts)
#  5 query   (r,l) torso r sleeve g  item E
#  6 gallery (r,l) torso r sleeve r  item F   <- answers sleeve->r for query 5: one-tone target, not region_part
#  7 gallery (r,l) torso r sleeve b  item F   <- answers sleeve->b for query 5 (two-tone, another item)
ROWS = [("query", R, S), ("gallery", R, S), ("gallery", R, S), ("gallery", R, S), ("gallery", G, S),
        ("query", R, L), ("gallery", R, L), ("gallery", R, L)]
REGION = {"sleeve:color": [R, G, G, B, R, G, R, B], "torso:color": [R, R, R, R, G, R, R, R]}
ITEMS = ["A", "A", "C", "A", "A", "E", "F", "F"]


def ds():
    return make(ROWS, REGION, ITEMS)


def pairs(task):
    return [(int(q), r.region) for q, r in zip(task.query_rows, task.requests)]


def test_region_has_every_satisfiable_pair_and_the_subsets_split_it_by_hand():
    d = ds()
    assert pairs(build_task(d, "region")) == [
        (0, (("sleeve", "color", "g"),)), (0, (("sleeve", "color", "b"),)), (0, (("torso", "color", "g"),)),
        (5, (("sleeve", "color", "r"),)), (5, (("sleeve", "color", "b"),))]
    # region_part: sleeve requests whose value differs from the query's torso (r), answered by another item:
    # 0 sleeve->b is only answered by its own item A (row 3); 5 sleeve->r is one-tone (torso r)
    part = build_task(d, "region_part")
    assert pairs(part) == [(0, (("sleeve", "color", "g"),)), (5, (("sleeve", "color", "b"),))]
    assert part.exclude_items == ["A", "E"]
    assert pairs(build_task(d, "region_primary")) == [(0, (("torso", "color", "g"),))]
    # the pairs only the query's own item answers: 0 sleeve->b and 0 torso->g (row 4 is item A)
    assert own_item_only(d, build_task(d, "region")).tolist() == [False, True, True, False, False]


def test_region_part_result_of_the_own_item_is_no_hit_region_primary_counts_it():
    d = ds()
    # query 0 sleeve->g ranks its own variant (row 1) first, then row 2; query 5 sleeve->b: row 7 first
    s = FixedOrder([1, 2, 7, 3, 4, 6], by_request={})
    res = evaluate(d, {"m": s}, protocols=["region", "region_part", "region_primary"], ks=(1, 2, 3))
    # region (no exclusion): 0 g -> row 1 hit @1; 0 b -> row 3 @4 (miss at 3); 0 torso g -> row 4 @5;
    # 5 r -> row 6 @6; 5 b -> row 7 @3.  Top-1: 1/5, Top-2: 1/5 (row 2 also a hit but q already hit), Top-3: 2/5
    assert (res["region"]["m"]["top1"], res["region"]["m"]["top3"], res["region"]["m"]["n"]) == (20.0, 40.0, 5)
    # region_part: 0 g -> row 1 is item A (excluded), row 2 hit @2; 5 b -> row 7 @3
    assert res["region_part"]["m"] == {"top1": 0.0, "top2": 50.0, "top3": 100.0, "prec1": 0.0, "prec2": 25.0,
                                       "prec3": pytest.approx(100 * (1 / 3 + 1 / 3) / 2, abs=1e-3), "n": 2}
    # region_primary: 0 torso->g wants row 4 (own item A, counted): rank 5 -> miss at 3
    assert res["region_primary"]["m"]["top3"] == 0.0 and res["region_primary"]["m"]["n"] == 1
    prim = evaluate(d, {"m": FixedOrder([4, 1])}, protocols=["region_primary"], ks=(1,))
    assert prim["region_primary"]["m"]["top1"] == 100.0


def test_region_part_uses_the_image_label_without_a_primary_region_column():
    # no torso:color column: the query's primary value is its image-level colour (r)
    rows = [("query", R, S), ("gallery", R, S), ("gallery", R, S)]
    d = make(rows, {"sleeve:color": [R, G, R]}, ["A", "B", "C"])
    assert pairs(build_task(d, "region_part")) == [(0, (("sleeve", "color", "g"),))]


def test_default_protocols_skip_what_the_data_lacks_and_explicit_ones_say_what_is_missing():
    plain = make([("gallery", R, S), ("gallery", G, S), ("query", R, S)])
    res = evaluate(plain, {"m": FixedOrder([0, 1])}, ks=(1,))
    assert "region_part" not in res and "region_primary" not in res and "manipulation" in res
    for proto in ("region_part", "region_primary", "region_specificity"):
        with pytest.raises(UsageError) as e:
            evaluate(plain, {"m": FixedOrder([0, 1])}, protocols=[proto], ks=(1,))
        msg = str(e.value)
        assert "\n" not in msg and proto in msg and "no region truth" in msg and "color, shape" in msg


def test_explicit_localisation_without_masks_names_the_folder_and_what_exists(tmp_path):
    d = make([("gallery", R, S), ("query", R, S)], {"sleeve:color": [R, R], "torso:color": [R, R]})
    d.root = tmp_path
    (tmp_path / "images").mkdir()
    (tmp_path / "attributes.csv").write_text("x")
    with pytest.raises(UsageError, match=r"has no masks/ folder .* it has attributes.csv, images/"):
        evaluate(d, {}, protocols=["localisation"], features={})
    assert "localisation" not in evaluate(d, {}, ks=(1,), features={})


def test_new_protocols_are_defaults_after_the_old_ones():
    assert PROTOCOLS[:5] == ("query", "manipulation", "region", "item", "adde")
    assert {"region_part", "region_primary"} <= set(PROTOCOLS)


def test_evaluate_grouped_keeps_the_exclusion():
    from fashionsearchnet.evaluation.protocol import evaluate_grouped, requested_attribute

    d = ds()
    out = evaluate_grouped(d, {"m": FixedOrder([1, 2, 7])}, "region_part", requested_attribute, ks=(1, 2))
    assert out["sleeve:color"]["m"]["top1"] == 0.0  # row 1 (own item) first for query 0; row 2 is query 5's miss
    assert np.isclose(out["sleeve:color"]["m"]["top2"], 50.0)
