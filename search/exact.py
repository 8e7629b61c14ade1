"""Exact search: top-k by float32 screening + float64 re-scoring, and :class:`ExactSearcher` over a table.

:func:`exact_topk` gives the same top-k as :func:`scorers.score` + :func:`topk_rows` (ties to the smaller row
index), fast: one float32 pass screens the rows, and the rows within the float32 rounding bound of the k-th
distance are re-scored in float64.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.scorers import check_method, effective_method, score, scorer
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.whole_numbers import whole_number

QUERY_BLOCK = 256  # query rows screened together


def topk_rows(dist: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Best-first ``rows`` for each line of ``dist`` (Q, M); ties go to the smaller row index."""
    Q, M = dist.shape
    out = np.empty((Q, k), np.int64)
    for i in range(Q):
        d = dist[i]
        if M > 4 * k:
            kth = np.partition(d, k - 1)[k - 1]
            cand = np.flatnonzero(d <= kth)
        else:
            cand = np.arange(M)
        order = np.lexsort((rows[cand], d[cand]))[:k]
        out[i] = rows[cand[order]]
    return out


def exact_topk(
    params: SearchParams, query: FeatureTable | None, request: Request, gallery: FeatureTable, method: str,
    rows: np.ndarray, k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k: (Q, k) gallery rows best first and their float64 distances (ties to the smaller row).
    ``query`` None: a composed query (Q = 1)."""
    rows = np.asarray(rows, dtype=np.int64)
    Q = 1 if query is None else len(query)
    out_rows = np.empty((Q, k), np.int64)
    out_d = np.empty((Q, k), np.float64)
    d32, tol = scorer(params, query, request, method).screen(gallery, rows)
    for i in range(Q):
        di = d32[i]
        kth = np.partition(di, k - 1)[k - 1] if len(di) > k else di.max()
        cand = np.flatnonzero(di <= kth + 2.0 * tol[i])
        d64 = score(params, None if query is None else query.take([i]), request, gallery, method, rows[cand])[0]
        order = np.lexsort((rows[cand], d64))[:k]
        out_rows[i], out_d[i] = rows[cand[order]], d64[order]
    return out_rows, out_d


def check_k(k: int, available: int, what: str = "gallery") -> int:
    """Validate k against the number of searchable items."""
    kk = whole_number(k)
    if kk is None or kk <= 0:
        raise UsageError(f"k = {k!r}: must be a positive integer")
    if available == 0:
        raise UsageError(f"the {what} is empty; index or add items before searching")
    if kk > available:
        raise UsageError(f"k = {k} is larger than the {what} ({available} items); ask for at most {available}")
    return kk


class ExactSearcher:
    """Exact search over a FeatureTable with one method (the evaluation Searcher and the ANN recall reference).

    Method ``fsn_region`` is what a gallery of an fsn bundle does: region requests get the section 4.4 scoring,
    plain ones the global representation (:func:`scorers.effective_method`)."""

    def __init__(self, params: SearchParams, features: FeatureTable, method: str = "fsn"):
        check_method(method)
        if method == "fsn_region" and features.region_reps.shape[1] != len(params.schema.region_pairs):
            raise UsageError(
                f"method fsn_region needs region_reps with {len(params.schema.region_pairs)} pairs, the table has "
                f"{features.region_reps.shape[1]}; extract region representations or use method fsn"
            )
        self.params, self.features, self.method = params, features, method

    def search(
        self, query_rows: Sequence[int], requests: Sequence[Request], gallery_rows: Sequence[int], k: int
    ) -> np.ndarray:
        """(Q, k) int64 table rows, best first. The query row is not excluded from ``gallery_rows``."""
        query_rows = np.asarray(query_rows, dtype=np.int64)
        gallery_rows = np.asarray(gallery_rows, dtype=np.int64)
        if len(requests) != len(query_rows):
            raise UsageError(f"{len(query_rows)} query rows but {len(requests)} requests; give one request per query")
        k = check_k(k, len(gallery_rows))
        out = np.empty((len(query_rows), k), np.int64)
        groups: dict[Request, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r, []).append(i)
        for req, idx in groups.items():
            idx_arr = np.asarray(idx)
            for s in range(0, len(idx_arr), QUERY_BLOCK):
                part = idx_arr[s:s + QUERY_BLOCK]
                out[part] = exact_topk(self.params, self.features.take(query_rows[part]), req, self.features,
                                       effective_method(self.method, req), gallery_rows, k)[0]
        return out

    def compose(self, requests: Sequence[Request], gallery_rows: Sequence[int], k: int) -> np.ndarray:
        """(Q, k) int64 table rows, best first, for composed queries (no image: search/compose.py)."""
        gallery_rows = np.asarray(gallery_rows, dtype=np.int64)
        k = check_k(k, len(gallery_rows))
        out = np.empty((len(requests), k), np.int64)
        for i, req in enumerate(requests):
            out[i] = exact_topk(self.params, None, req, self.features, effective_method(self.method, req),
                                gallery_rows, k)[0][0]
        return out
