"""The compose protocol (issue 24) on a hand-made gallery whose hits are worked out by hand, the
filter-on-predicted-labels baseline and the split by the classifier's confidence."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.schema import Attribute, Schema
from fashionsearchnet.evaluation.label_ranker import PredictedLabelFilter, predicted_labels
from fashionsearchnet.evaluation.protocol import (build_compose_task, compose_combinations, compose_confidence,
                                                  evaluate, evaluate_compose)
from fashionsearchnet.search.request import Request

SCHEMA = Schema((Attribute("color", ("r", "g", "b")), Attribute("shape", ("s", "l"))), ())
R, G, B, S, L, U = 0, 1, 2, 0, 1, -1


def make(rows: list[tuple]) -> Dataset:
    n = len(rows)
    return Dataset(root=Path("/nonexistent"), schema=SCHEMA, images=[Path(f"/x/{i}.jpg") for i in range(n)],
                   splits=np.array([r[0] for r in rows]), item_ids=[None] * n,
                   labels=np.array([[r[1], r[2]] for r in rows], np.int32))


# gallery 0 (r,s) 1 (g,s) 2 (r,l) 3 (r,?) 4 (b,l); row 5 is a training row with (g,l), a combination the gallery lacks
DS = make([("gallery", R, S), ("gallery", G, S), ("gallery", R, L), ("gallery", R, U), ("gallery", B, L),
           ("train", G, L)])


class Fixed:
    """Ranks the gallery by a preference list per request (by its text)."""

    def __init__(self, by_request):
        self.by_request = by_request

    def compose(self, requests, gallery_rows, k):
        out = []
        for req in requests:
            pref = self.by_request[" ".join(req.to_strings())]
            out.append(([r for r in pref if r in set(gallery_rows)] + [r for r in gallery_rows if r not in pref])[:k])
        return np.array(out, np.int64)


def test_combinations_are_what_gallery_items_have_and_distinct():
    combos = compose_combinations(DS, DS.indices("gallery"), seed=0, per_size=50)
    have = {tuple((a, int(DS.labels[r, a])) for a in attrs) for r in range(5) for attrs in ((0,), (1,), (0, 1))
            if all(DS.labels[r, a] >= 0 for a in attrs)}
    assert set(combos) == have and len(combos) == len(set(combos))  # every one found, none twice
    assert ((1, G), (0, L)) not in combos and ((0, G), (1, L)) not in combos  # (g,l) is only a training row's


def test_hits_need_every_described_value_and_a_known_label():
    task = build_compose_task(DS, seed=0, per_size=50)
    searcher = Fixed({"color=r": [3, 1, 0, 2], "shape=l": [0, 4, 2, 1], "color=r shape=s": [3, 2, 0, 1],
                      "color=r shape=l": [2, 0, 1, 3], "color=g": [1], "color=b": [4], "shape=s": [1, 0],
                      "color=g shape=s": [0, 1], "color=b shape=l": [4]})
    res = evaluate_compose(DS, {"m": searcher}, seed=0, max_queries=50, ks=(1, 2, 3))["compose"]["m"]
    by = {" ".join(r.to_strings()): i for i, r in enumerate(task.requests)}
    # hand: first-hit ranks. color=r 1; shape=l 2; color=r shape=s 3 (row 3 knows no shape); color=r shape=l 1;
    # color=g 1; color=b 1; shape=s 1; color=g shape=s 2; color=b shape=l 1
    first = {"color=r": 1, "shape=l": 2, "color=r shape=s": 3, "color=r shape=l": 1, "color=g": 1, "color=b": 1,
             "shape=s": 1, "color=g shape=s": 2, "color=b shape=l": 1}
    assert set(by) == set(first) and res["n"] == 9
    for k in (1, 2, 3):
        assert res[f"top{k}"] == pytest.approx(100 * np.mean([first[t] <= k for t in by]), abs=1e-3)
    # precision@2 by hand: hits in the first two results of each request
    hits2 = {"color=r": 1, "shape=l": 1, "color=r shape=s": 0, "color=r shape=l": 1, "color=g": 1, "color=b": 1,
             "shape=s": 2, "color=g shape=s": 1, "color=b shape=l": 1}
    assert res["prec2"] == pytest.approx(100 * np.mean([hits2[t] / 2 for t in by]), abs=1e-3)


def test_label_filter_baseline_and_confidence_groups():
    # predicted probabilities per row: [r g b | s l]; row 2 is predicted green (wrong), row 0 confidently right
    probs = np.array([[0.9, 0.05, 0.05, 0.9, 0.1], [0.2, 0.7, 0.1, 0.6, 0.4], [0.3, 0.6, 0.1, 0.2, 0.8],
                      [0.5, 0.3, 0.2, 0.5, 0.5], [0.1, 0.1, 0.8, 0.3, 0.7], [0.1, 0.8, 0.1, 0.1, 0.9]], np.float32)
    np.testing.assert_array_equal(predicted_labels(probs, [3, 2]), [[R, S], [G, S], [G, L], [R, S], [B, L], [G, L]])
    f = PredictedLabelFilter(DS, probs, seed=0)
    got = f.compose([Request(set=(("color", "g"),))], np.arange(5), 5)[0]
    assert set(got[:2]) == {1, 2}  # the two predicted green items first (the filter), in a fixed order
    task = build_compose_task(DS, seed=0, per_size=50)
    conf = compose_confidence(DS, task, probs)
    i = [" ".join(r.to_strings()) for r in task.requests].index("color=r")
    assert conf[i] == pytest.approx((0.9 + 0.3 + 0.5) / 3)  # over the red gallery items 0, 2, 3
    j = [" ".join(r.to_strings()) for r in task.requests].index("color=r shape=s")
    assert conf[j] == pytest.approx(0.9 * 0.9)  # only row 0 is a hit (row 3's shape is unknown)
    out = evaluate_compose(DS, {}, seed=0, max_queries=50, ks=(1, 2), baseline_probs=probs)
    assert set(out) == {"compose", "compose_low", "compose_mid", "compose_high"}
    assert sum(out[f"compose_{g}"]["label_filter"]["n"] for g in ("low", "mid", "high")) == out["compose"]["label_filter"]["n"] == 9
    lo, hi = out["compose_low"]["label_filter"]["confidence"], out["compose_high"]["label_filter"]["confidence"]
    assert lo[1] <= hi[0]


def test_evaluate_runs_compose_beside_the_other_protocols_with_the_baseline_from_fsn_features():
    from fashionsearchnet.search.exact import ExactSearcher
    from tests.support.gallery_fixtures import random_params, random_table

    from fashionsearchnet.data.schema import Schema as S

    sch = S((Attribute("color", ("r", "g", "b")), Attribute("shape", ("s", "l"))), ())
    params = random_params(sch, D=3, G=4)
    table = random_table(sch, len(DS), D=3)
    res = evaluate(DS, {"fsn": ExactSearcher(params, table, "fsn"), "attribute": ExactSearcher(params, table, "attribute")},
                   protocols=["compose"], ks=(1, 3))
    assert set(res["compose"]) == {"fsn", "attribute", "label_filter"} and res["compose"]["fsn"]["n"] == 9
