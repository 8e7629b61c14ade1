"""Triplet picking (numpy): triplets of regions inside a mini-batch (section 3.2, 4.5) and global triplets
for L_G where the positive equals the anchor after the manipulation a* (section 3.3)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def batch_triplets(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one attribute's labels (B,) (-1 unknown): every anchor with a same-value partner and a known
    different value gets one random positive (same value, another image) and one random negative."""
    labels = np.asarray(labels)
    anchors, positives, negatives = [], [], []
    known = np.flatnonzero(labels >= 0)
    for i in known:
        same = known[(labels[known] == labels[i]) & (known != i)]
        diff = known[labels[known] != labels[i]]
        if len(same) and len(diff):
            anchors.append(i)
            positives.append(rng.choice(same))
            negatives.append(rng.choice(diff))
    as_arr = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return as_arr(anchors), as_arr(positives), as_arr(negatives)


@dataclass
class GlobalTriplets:
    """Triplets for one manipulation set: anchor rows, the value swapped in (-1 for set 0), positives, negatives."""

    anchors: np.ndarray
    values: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray


class LabelIndex:
    """Rows grouped by their whole label vector (unknown -1 counts as a value), for positive look-ups."""

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.groups: dict[tuple[int, ...], np.ndarray] = {}
        uniq, inv = np.unique(self.labels, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for g in range(len(uniq)):
            self.groups[tuple(int(v) for v in uniq[g])] = order[bounds[g]:bounds[g + 1]]

    def rows(self, target: np.ndarray) -> np.ndarray:
        return self.groups.get(tuple(int(v) for v in target), np.zeros(0, np.int64))


GLOBAL_NEGATIVES = ("random", "near")


def _near_negative(index: LabelIndex, target: np.ndarray, num_classes: tuple[int, ...], rng: np.random.Generator,
                   tries: int) -> int:
    """A row whose labels differ from ``target`` in exactly one known attribute (-1 if none was found)."""
    known = np.flatnonzero((target >= 0) & (np.asarray(num_classes) > 1))  # attributes with another value
    for _ in range(tries if len(known) else 0):
        b = int(rng.choice(known))
        other = int(rng.integers(num_classes[b] - 1))
        near = target.copy()
        near[b] = other + (other >= target[b])  # a uniform draw among the other values
        rows = index.rows(near)
        if len(rows):
            return int(rng.choice(rows))
    return -1


def global_triplets(index: LabelIndex, anchors: np.ndarray, astar: int, num_classes: tuple[int, ...],
                    rng: np.random.Generator, max_neg_tries: int = 8, negatives: str = "random") -> GlobalTriplets:
    """Set ``astar`` (0: none, 1+a: attribute a gets a random other value): positive = a row whose labels equal
    the anchor's after the manipulation (another row for set 0), negative = a random row whose labels differ
    (``negatives="random"``, the paper's rule) or, with ``negatives="near"``, a row whose labels differ from the
    target in exactly one attribute (a random row when the training set has none). Anchors without such a
    positive are dropped."""
    if negatives not in GLOBAL_NEGATIVES:
        raise ValueError(f"negatives must be one of {GLOBAL_NEGATIVES}, got {negatives!r}")
    labels = index.labels
    n = len(labels)
    out_a, out_v, out_p, out_n = [], [], [], []
    for i in anchors:
        target = labels[i].copy()
        v = -1
        if astar > 0:
            a = astar - 1
            choices = [c for c in range(num_classes[a]) if c != target[a]]
            v = int(rng.choice(choices))
            target[a] = v
        cands = index.rows(target)
        if astar == 0:
            cands = cands[cands != i]
        if len(cands) == 0:
            continue
        k = _near_negative(index, target, num_classes, rng, max_neg_tries) if negatives == "near" else -1
        if k < 0:
            for _ in range(max_neg_tries):
                k = int(rng.integers(n))
                if not np.array_equal(labels[k], target):
                    break
            else:
                continue
        out_a.append(i)
        out_v.append(v)
        out_p.append(int(rng.choice(cands)))
        out_n.append(k)
    arr = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return GlobalTriplets(arr(out_a), arr(out_v), arr(out_p), arr(out_n))
