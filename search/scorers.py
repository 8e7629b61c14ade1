"""One scorer per method (docs/design.md, "Search semantics"), chosen in one place: :func:`scorer`.

Every scorer gives float64 distances from the differences (:meth:`score`, so that the ranking does not depend
on the order of float32 sums) and a fast float32 screen with a bound on its rounding error (:meth:`screen`:
one BLAS product per space with cached squared norms; no (N, G) table of global features is kept).

- ``fsn`` / ``no_aam`` (:class:`GlobalScorer`): global representations ``F(reps, a*)`` (eq. 7); manipulated
  attributes get their value's prototype; no manipulation -> set 0; one attribute ``a`` -> set ``1+a``; several
  -> the mean of the squared distances over their sets.
- ``attribute`` (:class:`AttributeScorer`): concatenated class probabilities; each manipulated attribute's block
  becomes a one-hot.
- ``fsn_region`` (:class:`RegionScorer`, section 4.4 as issue 17 fixed it): fsn's global distance with the
  image-level change for ``set`` and primary-region (torso) requests only, divided by ``global_scale``, plus per
  region pair the squared distance of the region-specific representation (a requested pair's query side is the
  region prototype of the asked value) divided by the pair's scale, weighted ``weight`` (requested collar/sleeve),
  ``primary_weight`` (requested torso) or ``region_weight x weight`` (untouched pairs): :class:`RegionTerms`.
Methods without region awareness treat ``region:attr=value`` as the image-level ``attr=value``;
:func:`effective_method` gives plain requests under ``fsn_region`` the ``fsn`` scoring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import RegionTerms, SearchParams
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
    """fsn_region: the image-level substitution of the global term and the region pairs a request asks."""

    attr_subst: dict[int, int]  # image-level ``set`` and primary-region requests (eq. 7's manipulation)
    pair_subst: dict[int, int]  # region pair index -> value index, every region request
    primary_pairs: frozenset[int]  # the requested pairs on the primary region


def region_plan(request: Request, schema: Schema) -> RegionPlan:
    """Which attributes the global term substitutes (image-level ``set`` and primary-region requests: the torso is
    what image-level labels describe) and which region pairs get their region prototype."""
    attr_subst: dict[int, int] = {}
    pair_subst: dict[int, int] = {}
    primary_pairs: set[int] = set()
    for attr, value in request.set:
        attr_subst[schema.attr_index(attr)] = schema.value_index(attr, value)
    primary = schema.primary_region
    for reg, attr, value in request.region:
        p = schema.region_pair_index(reg, attr)
        v = schema.value_index(attr, value)
        pair_subst[p] = v
        if reg == primary:
            a = schema.attr_index(attr)
            if a in attr_subst and attr_subst[a] != v:
                raise UsageError(
                    f"attribute {attr!r} is asked as {schema.attributes[a].values[attr_subst[a]]!r} and as "
                    f"{reg}:{attr}={value!r}; {reg!r} is the primary region (image-level {attr}); ask one value"
                )
            attr_subst[a] = v
            primary_pairs.add(p)
    return RegionPlan(attr_subst, pair_subst, frozenset(primary_pairs))


def mean_pair_sq(rows: np.ndarray) -> float:
    """Mean squared distance over the distinct pairs of rows (C, d) in float64 (0 with fewer than 2 rows)."""
    r = rows.astype(np.float64)
    if len(r) < 2:
        return 0.0
    d = sq_dist(r, r)
    return float(d[np.triu_indices(len(r), 1)].mean())


def prototype_scales(params: SearchParams) -> tuple[float, np.ndarray]:
    """(global scale, (P,) pair scales): the typical squared distance between two values of an attribute, in the
    global space (set 0, eq. 7: the attribute's prototypes swapped in, averaged over the attributes) and in each
    region pair's representation (its region prototypes). A scale that comes out 0 is 1."""
    D = params.dim
    glob = []
    for a, proto in enumerate(params.prototypes):
        block = params.W[0][a * D:(a + 1) * D].astype(np.float64) * float(params.lam[0][a])
        glob.append(mean_pair_sq(proto.astype(np.float64) @ block))
    g = float(np.mean(glob)) if glob else 0.0
    pairs = [mean_pair_sq(params.region_prototype(r, a)) for r, a in params.schema.region_pairs]
    return (g if g > 0 else 1.0), np.array([x if x > 0 else 1.0 for x in pairs], np.float64)


# a bundle without calibrated terms (exported before issue 17 or never calibrated): requested collar/sleeve pairs
# weigh as much as the global term, torso requests score as fsn, scales from the prototypes
DEFAULT_TERM_WEIGHT, DEFAULT_PRIMARY_WEIGHT = 1.0, 0.0


def region_terms(params: SearchParams) -> RegionTerms:
    """The bundle's calibrated :class:`RegionTerms`, else the defaults above with :func:`prototype_scales`."""
    if params.region_terms is not None:
        return params.region_terms
    g, pairs = prototype_scales(params)
    return RegionTerms(DEFAULT_TERM_WEIGHT, DEFAULT_PRIMARY_WEIGHT, g, pairs)


def pair_coefficients(plan: RegionPlan, terms: RegionTerms, region_weight: float) -> np.ndarray:
    """(P,) float64 factor of each pair's squared distance: requested non-primary ``weight``, requested primary
    ``primary_weight``, untouched ``region_weight x weight``; each divided by the pair's scale, relative to the
    global term divided by ``global_scale`` (both multiplied by ``global_scale``: the ranking is the same)."""
    P = len(terms.pair_scales)
    c = np.full(P, region_weight * terms.weight, np.float64)
    for p in plan.pair_subst:
        c[p] = terms.primary_weight if p in plan.primary_pairs else terms.weight
    return c * terms.global_scale / terms.pair_scales


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

    def __init__(self, params: SearchParams, query: FeatureTable, request: Request,
                 manip: dict[int, int] | None = None):
        manip = image_level(request, params.schema) if manip is None else manip  # fsn_region passes its own
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
    """``fsn_region``: fsn's global distance (eq. 7; image-level change only for ``set`` and primary-region
    requests) plus weighted squared distances of the region-specific representations, a requested pair's query
    representation replaced by the region prototype of the asked value (:func:`pair_coefficients`)."""

    def __init__(self, params: SearchParams, query: FeatureTable, request: Request,
                 global_params: SearchParams | None = None):
        """``global_params``: the parameters of the global term when they differ (a composed query's ``omit``)."""
        schema = params.schema
        plan = region_plan(request, schema)
        self.glob = GlobalScorer(params if global_params is None else global_params, query, request,
                                 manip=plan.attr_subst)
        self.c = pair_coefficients(plan, region_terms(params), float(params.region_weight))
        qr = np.array(query.region_reps, dtype=np.float32, copy=True)
        for p, v in plan.pair_subst.items():
            qr[:, p] = params.region_prototype(*schema.region_pairs[p])[v]
        self.qr = qr
        self.active = np.flatnonzero(self.c > 0)

    def region_score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        """(Q, M) float64: the weighted region terms alone, from the differences."""
        out = np.zeros((len(self.qr), len(rows)), np.float64)
        if not len(self.active):
            return out
        qr = self.qr[:, self.active].astype(np.float64)
        c = self.c[self.active]
        step = rows_per_chunk(len(qr), qr.shape[1] * qr.shape[2])
        for s in range(0, len(rows), step):
            r = rows[s:s + step]
            diff = qr[:, None] - gallery.region_reps[r][:, self.active].astype(np.float64)[None]  # (Q, m, P', D)
            out[:, s:s + len(r)] = np.einsum("qmpd,qmpd->qmp", diff, diff) @ c
        return out

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        return self.glob.score(gallery, rows) + self.region_score(gallery, rows)

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, tol = self.glob.screen(gallery, rows)
        if not len(self.active):
            return d, tol
        n, c, qr = len(gallery), self.c, self.qr
        Q, P, D = qr.shape
        gw = gallery.rep_norms()[1] @ c  # (N,) float64; pairs with c = 0 add nothing
        qn = (qr.astype(np.float64) ** 2).sum(-1) @ c  # (Q,)
        qw = (qr * c[None, :, None].astype(np.float32)).reshape(Q, P * D)
        fr = gallery.region_reps.reshape(n, P * D)
        dr = take_cols(lambda sel: dots(qw, fr[sel]), rows, n)
        dr *= -2.0
        dr += gw[rows].astype(np.float32)[None, :]
        dr += qn.astype(np.float32)[:, None]
        d += np.maximum(dr, 0.0)
        return d, tol + SCREEN_TOL * (qn + gw[rows].max(initial=0.0))


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
