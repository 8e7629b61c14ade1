"""A simulated attribute-based method: how much headroom a gallery's labels leave at Top-K, with no model at all.

The paper's attribute-based baseline predicts the query's attributes, substitutes the requested value and ranks
the gallery by its predicted attributes. :class:`NoisyLabelRanker` does the same with *simulated* predictions:
every gallery and query label is replaced by another value of its attribute with probability ``error``
(seeded), and the gallery is ranked by how many attributes agree with the request's target, ties in a fixed
random order. With ``error`` 0 it finds every satisfiable target first; as ``error`` grows, what keeps a target
in the Top-K is how few other gallery items come close to it. So its Top-K on a gallery says whether that
gallery can tell a good classifier from a perfect one, before any model is trained (issue 2's "must not
saturate"). Region requests are not simulated (image-level requests only). Torch-free.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.request import Request


def noisy_labels(labels: np.ndarray, n_values: Sequence[int], error: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of (N, A) ``labels`` in which each entry is, with chance ``error``, another value of its attribute.

    Unknown entries (-1) stay unknown: there is no truth to be wrong about (a sleeveless garment's cuff), and the
    protocols never ask for them.
    """
    if not 0.0 <= error <= 1.0:
        raise UsageError(f"error rate {error!r}: give a fraction between 0 and 1")
    labels = np.asarray(labels)
    out = labels.copy()
    for a, n in enumerate(n_values):
        col = out[:, a]
        unknown = col < 0
        flip = (rng.random(len(col)) < error) & ~unknown & (n > 1)
        shift = rng.integers(1, max(n, 2), flip.sum())  # 1..n-1: never the same value
        col[flip] = (col[flip] + shift) % n
    return out


def rank_by_agreement(gallery_pred: np.ndarray, targets: np.ndarray, tie_order: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) positions into the gallery, most agreeing attributes first, ties by ``tie_order`` (lower first).

    ``gallery_pred`` (G, A) predicted labels; ``targets`` (Q, A), -1 entries not compared; ``tie_order`` (G,) a
    permutation of 0..G-1.
    """
    G = len(gallery_pred)
    k = min(k, G)
    out = np.empty((len(targets), k), np.int64)
    for s in range(0, len(targets), 128):
        t = targets[s:s + 128]
        agree = ((gallery_pred[None, :, :] == t[:, None, :]) & (t[:, None, :] >= 0)).sum(-1)  # (q, G)
        key = agree.astype(np.int64) * G - tie_order[None, :]  # larger is better
        part = np.argpartition(-key, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(key, part, 1), axis=1, kind="stable")
        out[s:s + 128] = np.take_along_axis(part, order, 1)
    return out


class NoisyLabelRanker:
    """A :class:`evaluation.protocol.Searcher` over simulated predictions with per-label error ``error``."""

    def __init__(self, dataset: Dataset, error: float, seed: int = 0):
        self.dataset = dataset
        n_values = [len(a.values) for a in dataset.schema.attributes]
        rng = np.random.default_rng([seed, 17])
        self.pred = noisy_labels(dataset.labels, n_values, error, rng)
        self.tie_order = rng.permutation(len(dataset))

    def search(self, query_rows: np.ndarray, requests: Sequence[Request], gallery_rows: np.ndarray,
               k: int) -> np.ndarray:
        schema = self.dataset.schema
        targets = self.pred[np.asarray(query_rows)].copy()
        for i, req in enumerate(requests):
            if req.region:
                raise UsageError("the label ranker simulates image-level requests only; leave out region protocols")
            for name, value in req.set:
                a = schema.attr_index(name)
                targets[i, a] = schema.attributes[a].values.index(value)
        gallery_rows = np.asarray(gallery_rows)
        tie = np.argsort(np.argsort(self.tie_order[gallery_rows]))  # the fixed order, restricted to this gallery
        pos = rank_by_agreement(self.pred[gallery_rows], targets, tie, k)
        return gallery_rows[pos]


def predicted_labels(probs: np.ndarray, n_values: Sequence[int]) -> np.ndarray:
    """(N, A) arg-max label per attribute block of concatenated class probabilities (N, sum C_a)."""
    out = np.empty((len(probs), len(n_values)), np.int32)
    off = 0
    for a, n in enumerate(n_values):
        out[:, a] = np.argmax(probs[:, off:off + n], 1)
        off += n
    return out


class PredictedLabelFilter:
    """The filter-on-predicted-labels baseline of composed queries (issue 24): what ``--filter attr=value`` on a
    gallery's predicted attributes gives a shopper who describes an item. Items whose predicted labels match
    every described value come first, in a fixed random order (a filter has no ranking of its own); then items
    matching fewer (so the list is as long as the other methods' and precision counts a short filter's misses).
    ``probs`` (N, sum C_a) are the classifier's probabilities of every dataset row."""

    def __init__(self, dataset: Dataset, probs: np.ndarray, seed: int = 0):
        self.dataset = dataset
        self.pred = predicted_labels(np.asarray(probs), [len(a.values) for a in dataset.schema.attributes])
        self.tie_order = np.random.default_rng([seed, 24]).permutation(len(dataset))

    def compose(self, requests: Sequence[Request], gallery_rows: np.ndarray, k: int) -> np.ndarray:
        schema = self.dataset.schema
        targets = np.full((len(requests), len(schema.attributes)), -1, np.int32)
        for i, req in enumerate(requests):
            for name, value in list(req.set) + [(a, v) for _, a, v in req.region]:
                targets[i, schema.attr_index(name)] = schema.value_index(name, value)
        gallery_rows = np.asarray(gallery_rows)
        tie = np.argsort(np.argsort(self.tie_order[gallery_rows]))
        return gallery_rows[rank_by_agreement(self.pred[gallery_rows], targets, tie, k)]
