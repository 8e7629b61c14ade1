"""The simulated attribute-based method (evaluation/label_ranker.py): label noise at a planted rate, ranking by
agreeing attributes worked out by hand, and the protocols run through it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.schema import Attribute, Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.evaluation.label_ranker import NoisyLabelRanker, noisy_labels, rank_by_agreement
from fashionsearchnet.evaluation.protocol import evaluate


def test_noisy_labels_change_known_labels_at_the_rate_and_never_to_the_same_value():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (20000, 3)).astype(np.int32)
    labels[::7, 1] = -1
    labels[:, 2] = 0  # an attribute with one value cannot be wrong
    n_values = [4, 4, 1]
    assert np.array_equal(noisy_labels(labels, n_values, 0.0, np.random.default_rng(1)), labels)
    out = noisy_labels(labels, n_values, 0.2, np.random.default_rng(1))
    known = labels >= 0
    changed = out != labels
    assert abs(changed[:, 0].mean() - 0.2) < 0.01 and abs(changed[known[:, 1], 1].mean() - 0.2) < 0.01
    assert (out[~known] == -1).all() and not changed[:, 2].any()
    assert out[known].min() >= 0 and out[:, :2][known[:, :2]].max() <= 3
    every = noisy_labels(labels, n_values, 1.0, np.random.default_rng(2))
    assert (every[:, 0] != labels[:, 0]).all()
    # the wrong values are spread over the other values (4 values: each other one about a third of the flips)
    flipped = (every[:, 0] - labels[:, 0]) % 4
    assert np.allclose(np.bincount(flipped, minlength=4)[1:] / len(flipped), 1 / 3, atol=0.02)
    with pytest.raises(UsageError, match="between 0 and 1"):
        noisy_labels(labels, n_values, 1.5, rng)


def test_rank_by_agreement_by_hand():
    pred = np.array([[0, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1]])
    # agreements with (0, 0, 0): 3, 2, 0, 2
    assert rank_by_agreement(pred, np.array([[0, 0, 0]]), np.array([0, 1, 2, 3]), 4).tolist() == [[0, 1, 3, 2]]
    # the tie between items 1 and 3 follows the tie order (item 3 is 2nd, item 1 is 3rd)
    assert rank_by_agreement(pred, np.array([[0, 0, 0]]), np.array([0, 3, 1, 2]), 4).tolist() == [[0, 3, 1, 2]]
    # -1 in the target is not compared: agreements with (?, 1, ?) are 0, 1, 1, 0
    assert rank_by_agreement(pred, np.array([[-1, 1, -1]]), np.array([0, 1, 2, 3]), 2).tolist() == [[1, 2]]


SCHEMA = Schema((Attribute("color", ("r", "g", "b")), Attribute("shape", ("s", "l")), Attribute("cuff", ("n", "y"))))


def _dataset(rows):
    n = len(rows)
    return Dataset(root=Path("/nonexistent"), schema=SCHEMA, images=[Path(f"/nonexistent/{i}.jpg") for i in range(n)],
                   splits=np.array([r[0] for r in rows]), item_ids=[None] * n,
                   labels=np.array([r[1:] for r in rows], np.int32), region_labels={})


def test_exact_labels_find_every_target_first_and_noise_costs_top1():
    rng = np.random.default_rng(5)
    rows = [("gallery", *rng.integers(0, 3, 1), *rng.integers(0, 2, 2)) for _ in range(300)]
    rows += [("query", *rng.integers(0, 3, 1), *rng.integers(0, 2, 1), -1) for _ in range(20)]  # cuff unknown
    ds = _dataset(rows)
    res = evaluate(ds, {"e0": NoisyLabelRanker(ds, 0.0), "e3": NoisyLabelRanker(ds, 0.3)},
                   protocols=["manipulation", "query"])
    # 20 queries x (2 other colours + 1 other shape), the cuff unknown and so never asked for or compared
    assert res["manipulation"]["e0"]["n"] == 60 and res["manipulation"]["e0"]["top1"] == 100.0
    assert res["query"]["e0"]["top1"] == 100.0
    assert res["manipulation"]["e3"]["top1"] < 90.0


def test_denser_galleries_leave_less_at_top_k():
    """The same request and target, once among 1 near miss and once among 60: the noisy ranker keeps the target
    in its Top-5 far less often in the dense gallery."""
    from fashionsearchnet.search.request import Request

    def top5(near_misses):  # target (r, s, n) is row 0; near misses (r, l, n) differ in shape only
        rows = [("gallery", 0, 0, 0)] + [("gallery", 0, 1, 0)] * near_misses + [("gallery", 2, 1, 1)] * 20
        ds = _dataset(rows + [("query", 1, 0, 0)])  # (g, s, n) asks for colour r
        q, gallery = np.array([len(rows)]), np.arange(len(rows))
        return np.mean([0 in NoisyLabelRanker(ds, 0.2, seed=s).search(q, [Request(set=(("color", "r"),))], gallery, 5)
                        for s in range(100)])

    sparse, dense = top5(1), top5(60)
    assert sparse > 0.7 and dense < 0.3


def test_region_requests_are_refused():
    from fashionsearchnet.search.request import Request

    ds = _dataset([("gallery", 0, 0, 0), ("query", 1, 0, 0)])
    with pytest.raises(UsageError, match="image-level"):
        NoisyLabelRanker(ds, 0.1).search(np.array([1]), [Request(region=(("sleeve", "color", "r"),))],
                                         np.array([0]), 1)
