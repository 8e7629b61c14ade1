"""Losses and triplet picking against hand computations."""
import math

import numpy as np
import pytest
import torch

from fashionsearchnet.training import losses
from fashionsearchnet.training.prototypes import compute_prototypes
from fashionsearchnet.training.triplets import LabelIndex, batch_triplets, global_triplets


def test_soft_triplet_equals_hand_computation():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 2.0]])  # distances 5 and 1
    n = torch.tensor([[1.0, 0.0], [4.0, 5.0]])  # distances 1 and 5
    hand = [math.exp(5) / (math.exp(5) + math.exp(1)), math.exp(1) / (math.exp(1) + math.exp(5))]
    assert float(losses.soft_triplet(a, p, n)) == pytest.approx(sum(hand) / 2, rel=1e-5)


def test_soft_triplet_is_stable_for_huge_distances_and_identical_points():
    a = torch.zeros(1, 3, requires_grad=True)
    p = torch.full((1, 3), 1e4)
    n = torch.zeros(1, 3)  # a == n: distance 0 (gradient of the norm must stay finite)
    loss = losses.soft_triplet(a, p, n)
    loss.backward()
    assert float(loss) == pytest.approx(1.0) and torch.isfinite(a.grad).all()


def test_classification_loss_masks_unknown_labels():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0], [0.5, 0.5, 3.0, 0.0]])  # attribute 0: 2 classes, 1: 2 classes
    labels = torch.tensor([[0, -1], [1, 0]])
    lsm = lambda z, y: -(z[y] - math.log(sum(math.exp(v) for v in z)))  # noqa: E731
    hand_a0 = (lsm([2.0, 0.0], 0) + lsm([0.5, 0.5], 1)) / 2
    hand_a1 = lsm([3.0, 0.0], 0)  # row 0 unknown
    got = losses.classification_loss(logits, labels, [0, 2, 4])
    assert float(got) == pytest.approx(hand_a0 + hand_a1, rel=1e-6)
    all_unknown = losses.classification_loss(logits, torch.full((2, 2), -1), [0, 2, 4])
    assert float(all_unknown) == 0.0


def test_batch_triplets_share_and_differ():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 1, 1, 2, -1, 0, 3])
    a, p, n = batch_triplets(y, rng)
    assert set(a.tolist()) == {0, 1, 2, 3, 6}  # 4 (value 2) and 7 (value 3) have no partner; 5 is unknown
    assert (y[a] == y[p]).all() and (a != p).all() and (y[a] != y[n]).all() and (y[n] >= 0).all()


def test_global_triplets_positive_equals_anchor_after_manipulation():
    labels = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [0, 1]])
    idx = LabelIndex(labels)
    rng = np.random.default_rng(3)
    for astar in range(3):
        t = global_triplets(idx, np.arange(6), astar, (2, 2), rng)
        assert len(t.anchors) > 0
        for i, v, p, n in zip(t.anchors, t.values, t.positives, t.negatives):
            target = labels[i].copy()
            if astar:
                assert v != labels[i, astar - 1]
                target[astar - 1] = v
            else:
                assert p != i
            assert (labels[p] == target).all() and not (labels[n] == target).all()


def test_near_global_negatives_are_one_attribute_from_the_target():
    grid = np.array([[a, b, c] for a in range(3) for b in range(2) for c in range(3)] * 2)  # every combination, twice
    idx = LabelIndex(grid)
    rng = np.random.default_rng(5)
    for astar in range(4):
        t = global_triplets(idx, np.arange(len(grid)), astar, (3, 2, 3), rng, negatives="near")
        assert len(t.anchors) == len(grid)
        for i, v, p, n in zip(t.anchors, t.values, t.positives, t.negatives):
            target = grid[i].copy()
            if astar:
                target[astar - 1] = v
            assert (grid[p] == target).all()
            assert int((grid[n] != target).sum()) == 1  # the hardest label-space negative
    # the random rule (default) picks negatives that are mostly further away on this grid
    t = global_triplets(idx, np.arange(len(grid)), 0, (3, 2, 3), np.random.default_rng(5))
    assert np.mean([(grid[n] != grid[i]).sum() for i, n in zip(t.anchors, t.negatives)]) > 1.5


def test_near_global_negatives_fall_back_to_random_rows():
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])  # no row is one attribute away from another
    t = global_triplets(LabelIndex(labels), np.arange(4), 0, (2, 2), np.random.default_rng(0), negatives="near")
    assert len(t.anchors) == 4
    assert all((labels[n] != labels[i]).sum() == 2 for i, n in zip(t.anchors, t.negatives))
    with pytest.raises(ValueError, match="negatives"):
        global_triplets(LabelIndex(labels), np.arange(4), 0, (2, 2), np.random.default_rng(0), negatives="hard")


def test_prototypes_equal_hand_means():
    reps = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3) * 0.5
    labels = np.array([[0, 2], [1, 2], [0, -1], [1, 0], [0, 0]])
    protos = compute_prototypes(reps, labels, (3, 3))
    np.testing.assert_allclose(protos[0][0], reps[[0, 2, 4], 0].mean(0))
    np.testing.assert_allclose(protos[0][1], reps[[1, 3], 0].mean(0))
    np.testing.assert_allclose(protos[0][2], reps[:, 0].mean(0))  # value never seen -> mean of all
    np.testing.assert_allclose(protos[1][0], reps[[3, 4], 1].mean(0))
    np.testing.assert_allclose(protos[1][1], reps[:, 1].mean(0))
    np.testing.assert_allclose(protos[1][2], reps[[0, 1], 1].mean(0))
    assert all(p.dtype == np.float32 and np.isfinite(p).all() for p in protos)
