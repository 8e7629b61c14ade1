"""One scorer per method (docs/design.md, "Search semantics"), chosen in one place: :func:`scorer`.

Every scorer gives float64 distances from the differences (:meth:`score`, so that the ranking does not depend
on the order of float32 sums) and a fast float32 screen with a bound on its rounding error (:meth:`screen`:
one BLAS product per space with cached squared norms; no (N, G) table of global features is kept).

- ``fsn`` / ``no_aam`` (:class:`GlobalScorer`): global representations ``F(reps, a*)`` (eq. 7); manipulated
  attributes get their value's prototype; no manipulation -> set 0; one attribute ``a`` -> set ``1+a``; several
  -> the mean of the squared distances over their sets.
- ``attribute`` (:class:`AttributeScorer`): concatenated class probabilities; each manipulated attribute's block
  becomes a one-hot.
- ``fsn_region`` (:class:`RegionScorer`, section 4.4): weighted sum of squared distances over the attribute
  representations and the region-specific representations; requested ones (prototype-substituted) weigh 1,
  every other one ``region_weight``; a request on the primary region also substitutes the image-level attribute.
Methods without region awareness treat ``region:attr=value`` as the image-level ``attr=value``;
:func:`effective_method` gives plain requests under ``fsn_region`` the ``fsn`` scoring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.request import Request, image_level
from fashionsearchnet.search.table import CHUNK, FeatureTable

METHODS = ("fsn", "fsn_region", "no_aam", "attribute")
SCREEN_TOL = 1e-4  # float32 screening margin, relative to the squared norms involved (>> float32 rounding)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UsageError(f"unknown search method {method!r}; valid: {', '.join(METHODS)}")
    return method


def effective_method(method: str, request: Request) -> str:
    """The scoring one request gets under ``method``: ``fsn_region`` scores only requests that name a region
    (section 4.4); a plain request is scored as ``fsn``, as the gallery does for an fsn bundle."""
    return "fsn" if method == "fsn_region" and not request.region else method


# ---- pure math ------------------------------------------------------------------------------------
def dots(qv: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(Q, d) x (M, d) -> (Q, M) float32 dot products. One query: einsum's single-threaded loop (threaded BLAS
    gemv stalled on the busy 2-core machine: 8-16 ms against 3-6 ms for 100k x 128); several: one BLAS gemm."""
    if len(qv) == 1:
        return np.einsum("mk,k->m", g, qv[0], optimize=False)[None, :]
    return qv @ g.T


def sq_dist(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Squared L2 distances (Q, M) in float64 between rows of q (Q, d) and g (M, d), from the differences
    (no cancellation: identical rows are exactly 0 apart, so ties stay ties)."""
    diff = q.astype(np.float64)[:, None, :] - g.astype(np.float64)[None, :, :]
    return np.einsum("qmd,qmd->qm", diff, diff)


def rows_per_chunk(Q: int, width: int) -> int:
    """Gallery rows per block so that a (Q, rows, width) float64 temporary stays near 32 MB."""
    return max(1, min(CHUNK, (4 << 20) // max(1, Q * width)))


def onehot_probs(probs: np.ndarray, schema: Schema, manip: dict[int, int]) -> np.ndarray:
    """Copy of probs (Q, sumC) with each manipulated attribute's block replaced by a one-hot."""
    out = np.array(probs, dtype=np.float32, copy=True)
    offsets = schema.class_offsets
    for a, v in manip.items():
        out[:, offsets[a]:offsets[a + 1]] = 0.0
        out[:, offsets[a] + v] = 1.0
    return out


def substitute(attr_reps: np.ndarray, prototypes: list[np.ndarray], manip: dict[int, int]) -> np.ndarray:
    """Copy of attr_reps (Q, A, D) with attribute a replaced by prototypes[a][v] for each (a, v) in manip."""
    out = np.array(attr_reps, dtype=np.float32, copy=True)
    for a, v in manip.items():
        out[:, a] = prototypes[a][v]
    return out


def fsn_sets(manip: dict[int, int]) -> list[int]:
    """Weight sets a request uses: [0] without manipulation, else [1+a for each manipulated a] (sorted)."""
    return [0] if not manip else [1 + a for a in sorted(manip)]


@dataclass(frozen=True)
class RegionPlan:
    """fsn_region: substitutions and per-representation weights for one request."""

    attr_subst: dict[int, int]
    pair_subst: dict[int, int]
    attr_w: np.ndarray  # (A,)
    pair_w: np.ndarray  # (P,)


def region_plan(request: Request, schema: Schema, region_weight: float) -> RegionPlan:
    """Section 4.4 weighting: requested representations weigh 1 (prototype substituted), others ``region_weight``."""
    A, P = len(schema.attributes), len(schema.region_pairs)
    attr_w = np.full(A, region_weight, np.float64)
    pair_w = np.full(P, region_weight, np.float64)
    attr_subst: dict[int, int] = {}
    pair_subst: dict[int, int] = {}
    for attr, value in request.set:
        a = schema.attr_index(attr)
        attr_subst[a] = schema.value_index(attr, value)
        attr_w[a] = 1.0
    primary = schema.primary_region
    for reg, attr, value in request.region:
        p = schema.region_pair_index(reg, attr)
        v = schema.value_index(attr, value)
        pair_subst[p] = v
        pair_w[p] = 1.0
        if reg == primary:
            a = schema.attr_index(attr)
            if a in attr_subst and attr_subst[a] != v:
                raise UsageError(
                    f"attribute {attr!r} is asked as {schema.attributes[a].values[attr_subst[a]]!r} and as "
                    f"{reg}:{attr}={value!r}; {reg!r} is the primary region (image-level {attr}); ask one value"
                )
            attr_subst[a] = v
            attr_w[a] = 1.0
    return RegionPlan(attr_subst, pair_subst, attr_w, pair_w)


def gallery_global_sq(params: SearchParams, table: FeatureTable, astar: int) -> np.ndarray:
    """Squared norms (N,) float64 of F(table, a*), cached on the table."""
    def make():
        sq = np.empty(len(table), np.float64)
        for s in range(0, len(table), CHUNK):  # F in chunks: nothing (N, G) is kept
            f = global_representation(table.attr_reps[s:s + CHUNK], params.lam, params.W, astar)
            sq[s:s + CHUNK] = (f.astype(np.float64) ** 2).sum(1)
        return sq

    return table.cached(("F2", astar), params, make)


def take_cols(fn, rows: np.ndarray, n: int) -> np.ndarray:
    """``fn(sel)`` on the selected gallery rows: a slice-free full pass when most rows are kept (no gather copy)."""
    if len(rows) == n and (n == 0 or (rows[0] == 0 and rows[-1] == n - 1 and bool(np.all(np.diff(rows) == 1)))):
        return fn(slice(None))
    if len(rows) * 4 >= n:
        return fn(slice(None))[:, rows]
    return fn(rows)


# ---- the scorers --------------------------------------------------------------------------------------
class Scorer(Protocol):
    """Distances from every row of one query table (all under one request) to gallery rows."""

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        """(Q, M) float64 distances, smaller is better."""

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Q, M) float32 distances and a per-query bound (Q,) on how far :meth:`score` may differ."""


class AttributeScorer:
    """``attribute``: class probabilities, the manipulated blocks one-hot."""

    def __init__(self, params: SearchParams, query: FeatureTable, request: Request):
        self.qv = onehot_probs(query.probs, params.schema, image_level(request, params.schema))

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        qv = self.qv
        out = np.zeros((len(qv), len(rows)), np.float64)
        step = rows_per_chunk(len(qv), qv.shape[1])
        for s in range(0, len(rows), step):
            r = rows[s:s + step]
            out[:, s:s + len(r)] = sq_dist(qv, gallery.probs[r])
        return out

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qv, n = self.qv, len(gallery)
        gsq = gallery.cached(("P2",), None, lambda: (gallery.probs.astype(np.float64) ** 2).sum(1))
        qsq = (qv.astype(np.float64) ** 2).sum(1)
        d = take_cols(lambda sel: dots(qv, gallery.probs[sel]), rows, n)
        d *= -2.0
        d += gsq[rows].astype(np.float32)[None, :]
        d += qsq.astype(np.float32)[:, None]
        return np.maximum(d, 0.0), SCREEN_TOL * (qsq + gsq[rows].max(initial=0.0))


class GlobalScorer:
    """``fsn`` and ``no_aam``: the global representations of eq. 7 (the methods differ in their features)."""

    def __init__(self, params: SearchParams, query: FeatureTable, request: Request):
        manip = image_level(request, params.schema)
        self.params = params
        self.qa = substitute(query.attr_reps, params.prototypes, manip)
        self.sets = fsn_sets(manip)

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        p, qa = self.params, self.qa
        out = np.zeros((len(qa), len(rows)), np.float64)
        for astar in self.sets:
            # the candidates' own kernel: a query's twin in the gallery is exactly 0 apart
            qf = global_representation(qa, p.lam, p.W, astar, kernel="blocks")
            step = rows_per_chunk(len(qa), qf.shape[1])
            for s in range(0, len(rows), step):
                r = rows[s:s + step]
                out[:, s:s + len(r)] += sq_dist(qf, global_representation(gallery.attr_reps[r], p.lam, p.W, astar,
                                                                          kernel="blocks"))
        out /= len(self.sets)
        return out

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # in the representation space (no (N, G) cache of global features per set):
        # F_s(q).F_s(g) = reps(g) . v_s with v_s = lam_s (x) (W_s F_s(q)); the mean over the sets is one pass
        p, qa, n = self.params, self.qa, len(gallery)
        Q, A, D = qa.shape
        v = np.zeros((Q, A * D), np.float64)
        qsq = np.zeros(Q, np.float64)
        gsq = np.zeros(len(rows), np.float64)
        for astar in self.sets:
            qf = global_representation(qa, p.lam, p.W, astar).astype(np.float64)
            v += (qf @ p.W[astar].T.astype(np.float64)) * np.repeat(p.lam[astar].astype(np.float64), D)[None]
            qsq += (qf ** 2).sum(1)
            gsq += gallery_global_sq(p, gallery, astar)[rows]
        S = len(self.sets)
        v, qsq, gsq = v / S, qsq / S, gsq / S
        fa = gallery.attr_reps.reshape(n, A * D)
        d = take_cols(lambda sel: dots(v.astype(np.float32), fa[sel]), rows, n)
        d *= -2.0
        d += gsq.astype(np.float32)[None, :]
        d += qsq.astype(np.float32)[:, None]
        # rounding bound: the norms, and the dot through the representations (|reps . v| <= |reps| |v|)
        rep_max = gallery.cached(("repmax",), None,  # over all rows: a bound
                                 lambda: float(np.sqrt(gallery.rep_norms()[0].sum(1).max(initial=0.0))))
        tol = SCREEN_TOL * (qsq + gsq.max(initial=0.0) + 2.0 * np.linalg.norm(v, axis=1) * rep_max)
        return np.maximum(d, 0.0), tol


class RegionScorer:
    """``fsn_region`` (section 4.4): weighted attribute and region-specific representations."""

    def __init__(self, params: SearchParams, query: FeatureTable, request: Request):
        schema = params.schema
        self.plan = plan = region_plan(request, schema, params.region_weight)
        self.qa = substitute(query.attr_reps, params.prototypes, plan.attr_subst)
        qr = np.array(query.region_reps, dtype=np.float32, copy=True)
        for p, v in plan.pair_subst.items():
            qr[:, p] = params.prototypes[schema.attr_index(schema.region_pairs[p][1])][v]
        self.qr = qr
        self.w = np.concatenate([plan.attr_w, plan.pair_w])

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        qrep = np.concatenate([self.qa.astype(np.float64), self.qr.astype(np.float64)], 1)  # (Q, A+P, D)
        out = np.zeros((len(qrep), len(rows)), np.float64)
        step = rows_per_chunk(len(qrep), qrep.shape[1] * qrep.shape[2])
        for s in range(0, len(rows), step):
            r = rows[s:s + step]
            g = np.concatenate([gallery.attr_reps[r], gallery.region_reps[r]], 1).astype(np.float64)
            diff = qrep[:, None] - g[None]  # (Q, m, A+P, D)
            out[:, s:s + len(r)] = np.einsum("qmrd,qmrd->qmr", diff, diff) @ self.w
        return out

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qa, qr, w, plan, n = self.qa, self.qr, self.w, self.plan, len(gallery)
        ga_n, gr_n = gallery.rep_norms()
        gw = np.concatenate([ga_n, gr_n], 1) @ w  # (N,) float64, cheap
        qn = np.concatenate([(qa.astype(np.float64) ** 2).sum(-1), (qr.astype(np.float64) ** 2).sum(-1)], 1) @ w
        Q, A, D = qa.shape
        P = qr.shape[1]
        qwa = (qa * plan.attr_w[None, :, None].astype(np.float32)).reshape(Q, A * D)
        qwr = (qr * plan.pair_w[None, :, None].astype(np.float32)).reshape(Q, P * D)
        fa = gallery.attr_reps.reshape(n, A * D)
        fr = gallery.region_reps.reshape(n, P * D)

        def both(sel):
            out = dots(qwa, fa[sel])
            if P:
                out += dots(qwr, fr[sel])
            return out

        d = take_cols(both, rows, n)
        d *= -2.0
        d += gw[rows].astype(np.float32)[None, :]
        d += qn.astype(np.float32)[:, None]
        tol = SCREEN_TOL * (qn + gw[rows].max(initial=0.0))
        return np.maximum(d, 0.0), tol


SCORERS: dict[str, type] = {"fsn": GlobalScorer, "no_aam": GlobalScorer, "attribute": AttributeScorer,
                            "fsn_region": RegionScorer}


def scorer(params: SearchParams, query: FeatureTable | None, request: Request, method: str) -> Scorer:
    """The scorer of ``method`` for ``query`` under ``request``: the one place a method is chosen. ``query``
    None: a composed query (no image; search/compose.py)."""
    if query is None:
        from fashionsearchnet.search.compose import composed_scorer

        return composed_scorer(params, request, check_method(method))
    return SCORERS[check_method(method)](params, query, request)


def score(params: SearchParams, query: FeatureTable | None, request: Request, gallery: FeatureTable, method: str,
          rows: np.ndarray | None = None) -> np.ndarray:
    """Distances (Q, M) in float64 from each query row (all under the same ``request``) to ``gallery`` rows.

    ``query`` need not be part of ``gallery`` (an uploaded image's features); None: a composed query (one row).
    ``rows`` selects gallery rows (default all). Smaller is better.
    """
    check_method(method)
    rows = np.arange(len(gallery), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    nq = 1 if query is None else len(query)
    if len(rows) == 0 or nq == 0:
        return np.zeros((nq, len(rows)), np.float64)
    return scorer(params, query, request, method).score(gallery, rows)
