"""Approximate search over the hnsw indices (one per weight set a*), every candidate re-scored in float64 from
the stored representations (eq. 7 for the candidates only), so distances and tie order equal the exact search's
up to float32 rounding of the projection. Query-side math avoids multi-threaded BLAS (tiny products stall on a
busy machine)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from fashionsearchnet.gallery import ann
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.search.compose import candidate_values, composed_reps
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.request import Request, candidate_substitution, image_level
from fashionsearchnet.search.scorers import fsn_sets, score, substitute
from fashionsearchnet.search.table import FeatureTable

REGION_CANDIDATES_PER_K, REGION_CANDIDATES_MIN = 50, 1000  # approximate fsn_region: candidates re-scored exactly


@dataclass
class AnnSearch:
    """The indices of a gallery and what re-scoring their candidates needs."""

    params: SearchParams
    features: FeatureTable
    indices: dict[int, Any]
    hnsw: HnswConfig

    def query_global(self, qa: np.ndarray, astar: int) -> np.ndarray:
        """F(q, a*) of one query's (A, D) representations, float64 without BLAS."""
        return global_representation(qa[None], self.params.lam, self.params.W, astar, kernel="float64")[0]

    def post_filtered(self, q: FeatureTable | None, request: Request, method: str, k: int, mask: np.ndarray, kept: int,
                      size: int) -> tuple[np.ndarray, np.ndarray]:
        """Ask the indices without a filter for ``want / (kept fraction)`` candidates (x1.5 + 10 when filtered),
        drop the rows ``mask`` refuses, and ask twice as many until ``k`` pass or the whole gallery (``size``
        searchable items) was asked."""
        frac = kept / max(size, 1)  # the filter's kept fraction
        want = k if frac >= 1.0 else int(k / frac * 1.5) + 10
        search = self.region if method == "fsn_region" else self.global_sets
        if q is None:
            search = partial(self.composed, method=method)
        while True:
            rows, d = search(q, request, min(want, size), mask, size)
            if len(rows) >= k or want >= size:
                return rows, d
            want *= 2

    def region(self, q: FeatureTable, request: Request, k: int, mask: np.ndarray, size: int):
        """fsn_region: ``max(50 k, 1000)`` candidates from the set-0 index with the image-level substitution of
        fsn_region's global term (``candidate_substitution``), re-scored exactly with fsn_region."""
        manip = candidate_substitution(request, self.params.schema)
        qa = substitute(q.attr_reps, self.params.prototypes, manip)
        qf = self.query_global(qa[0], 0)
        per = min(max(REGION_CANDIDATES_PER_K * k, REGION_CANDIDATES_MIN), size)
        labels, _ = ann.query(self.indices[0], qf[None], per, self.hnsw.ef)
        rows = labels[0][mask[labels[0]]]
        return rows, score(self.params, q, request, self.features, "fsn_region", rows)[0]

    def global_sets(self, q: FeatureTable, request: Request, k: int, mask: np.ndarray, size: int):
        """``k`` (+1 for an excluded query item) candidates from the index of each weight set the request uses,
        ``mask``-ed, scored in float64 (several sets: the union of their candidates, the mean of the squared
        distances over the sets)."""
        manip = image_level(request, self.params.schema)
        qa = substitute(q.attr_reps, self.params.prototypes, manip)
        sets = fsn_sets(manip)
        per = k if len(sets) == 1 else max(4 * k, self.hnsw.ef)
        per = min(per + int(not mask.all()), size)
        qfs = {s: self.query_global(qa[0], s) for s in sets}
        cands = [ann.query(self.indices[s], qfs[s][None], per, self.hnsw.ef)[0][0] for s in sets]
        rows = np.unique(np.concatenate(cands)) if len(sets) > 1 else cands[0]
        rows = rows[mask[rows]]
        return rows, self.candidate_distances(qfs, rows)

    def composed(self, q: None, request: Request, k: int, mask: np.ndarray, size: int, method: str):
        """A composed query (no image): ``max(50 k, 1000)`` candidates from the index of each weight set its
        image-level values use, asked with the prototype-built query (search/compose.py ``composed_reps``),
        re-scored exactly with the composed distance of ``method``."""
        manip = candidate_values(request, self.params.schema)
        qa = composed_reps(self.params, request)
        per = min(max(REGION_CANDIDATES_PER_K * k, REGION_CANDIDATES_MIN), size)
        cands = [ann.query(self.indices[s], self.query_global(qa, s)[None], per, self.hnsw.ef)[0][0]
                 for s in fsn_sets(manip)]
        rows = np.unique(np.concatenate(cands))
        rows = rows[mask[rows]]
        return rows, score(self.params, None, request, self.features, method, rows)[0]

    def candidate_distances(self, qfs: dict[int, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Mean over the sets of the float64 squared distances from the stored representations (eq. 7 for the
        candidates only; no hnswlib get_items, no cached global features)."""
        reps = self.features.attr_reps[rows]
        d = np.zeros(len(rows), np.float64)
        for s, qf in qfs.items():
            g = global_representation(reps, self.params.lam, self.params.W, s, kernel="blocks").astype(np.float64)
            d += ((g - qf) ** 2).sum(1)
        return d / len(qfs)
