"""Search semantics (docs/design.md, "Search semantics"): requests, distances, exact top-k. numpy only.

Shared by the PyTorch reference evaluation (``fsn eval`` on a run folder), the bundle evaluation and the
gallery (exact search and re-ranking). :func:`score` computes distances in float64 from the differences, so
that the ranking does not depend on the order of float32 sums; ties are broken by the smaller row index.
:func:`exact_topk` gives the same top-k fast: one float32 pass over the stored representations with cached
squared norms screens the rows (no (N, G) table of global features is kept: ``F_s(q).F_s(g) = reps(g).v_s``),
and the rows within the float32 rounding bound of the k-th distance are re-scored with :func:`score`.

Methods:
- ``fsn`` / ``no_aam``: global representations ``F(reps, a*)`` (eq. 7); manipulated attributes get their value's
  prototype; no manipulation -> set 0; one attribute ``a`` -> set ``1+a``; several -> the mean of the squared
  distances over their sets.
- ``attribute``: concatenated class probabilities; each manipulated attribute's block becomes a one-hot.
- ``fsn_region`` (section 4.4): weighted sum of squared distances over the attribute representations and the
  region-specific representations; requested ones (prototype-substituted) weigh 1, every other one
  ``region_weight``; a request on the primary region also substitutes the image-level attribute.
Methods without region awareness treat ``region:attr=value`` as the image-level ``attr=value``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.runtime.features import SearchParams, global_representation  # noqa: F401 - re-exported
from fashionsearchnet.whole_numbers import whole_number

METHODS = ("fsn", "fsn_region", "no_aam", "attribute")
_CHUNK = 16384  # gallery rows per distance block (bounds the float64 temporaries)


# ---- requests -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """A manipulation: image-level ``set`` ((attr, value), ...) and region-level ((region, attr, value), ...)."""

    set: tuple[tuple[str, str], ...] = ()
    region: tuple[tuple[str, str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.set and not self.region

    @classmethod
    def parse(cls, sets: Sequence[str], schema: Schema) -> "Request":
        """Parse ``["collar=round", "sleeve:color=red"]`` and validate every name against ``schema``."""
        plain: list[tuple[str, str]] = []
        region: list[tuple[str, str, str]] = []
        for raw in sets or ():
            text = str(raw).strip()
            if "=" not in text:
                raise UsageError(
                    f"--set {raw!r}: expected attr=value or region:attr=value; valid attributes: {', '.join(schema.names)}"
                )
            key, value = (s.strip() for s in text.split("=", 1))
            if ":" in key:
                reg, attr = (s.strip() for s in key.split(":", 1))
                region.append((reg, attr, value))
            else:
                plain.append((key, value))
        req = cls(tuple(plain), tuple(region))
        req.validate(schema)
        return req

    def validate(self, schema: Schema) -> None:
        """Raise SchemaError/UsageError for unknown names or an attribute asked twice with different values."""
        seen: dict[str, str] = {}
        for attr, value in self.set:
            schema.value_index(attr, value)  # SchemaError listing valid attributes / values
            if attr in seen and seen[attr] != value:
                raise UsageError(f"--set {attr}: asked twice ({seen[attr]!r} and {value!r}); give one value")
            seen[attr] = value
        seen_pairs: dict[tuple[str, str], str] = {}
        for reg, attr, value in self.region:
            schema.region_pair_index(reg, attr)  # SchemaError listing valid regions / attributes
            schema.value_index(attr, value)
            if (reg, attr) in seen_pairs and seen_pairs[(reg, attr)] != value:
                raise UsageError(f"--set {reg}:{attr}: asked twice ({seen_pairs[(reg, attr)]!r} and {value!r}); give one value")
            seen_pairs[(reg, attr)] = value

    def to_strings(self) -> list[str]:
        """The inverse of ``parse``."""
        return [f"{a}={v}" for a, v in self.set] + [f"{r}:{a}={v}" for r, a, v in self.region]


def image_level(request: Request, schema: Schema) -> dict[int, int]:
    """{attribute index: value index} with region requests mapped to image level (non-region methods)."""
    out: dict[int, int] = {}
    for attr, value in list(request.set) + [(a, v) for _, a, v in request.region]:
        a, v = schema.attr_index(attr), schema.value_index(attr, value)
        if a in out and out[a] != v:
            raise UsageError(
                f"attribute {attr!r} is asked with two values ({schema.attributes[a].values[out[a]]!r} and {value!r}) "
                "and this method has no region awareness; ask one value"
            )
        out[a] = v
    return out


def candidate_substitution(request: Request, schema: Schema) -> dict[int, int]:
    """Image-level {attribute: value} for picking fsn_region candidates from a global-space index.

    Like :func:`image_level` (region requests become the image-level request), but a conflict is not an error:
    the image-level ``set`` and primary-region requests win, as in :func:`region_plan`.
    """
    out: dict[int, int] = {}
    primary = schema.primary_region
    ordered = list(request.set) + [(a, v) for r, a, v in request.region if r == primary]
    ordered += [(a, v) for r, a, v in request.region if r != primary]
    for attr, value in ordered:
        out.setdefault(schema.attr_index(attr), schema.value_index(attr, value))
    return out


# ---- parameters and features ----------------------------------------------------------------------
@dataclass
class FeatureTable:
    """Per-image features: attr_reps (N, A, D), region_reps (N, P, D), probs (N, sum C_a), all float32.

    Treat as immutable once searched: derived arrays (squared norms, N floats per space) are cached on the table.
    """

    attr_reps: np.ndarray
    region_reps: np.ndarray
    probs: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.attr_reps = np.ascontiguousarray(self.attr_reps, dtype=np.float32)
        self.probs = np.ascontiguousarray(self.probs, dtype=np.float32)
        n = self.attr_reps.shape[0]
        if self.region_reps is None:
            self.region_reps = np.zeros((n, 0, self.attr_reps.shape[2]), np.float32)
        self.region_reps = np.ascontiguousarray(self.region_reps, dtype=np.float32)
        if self.attr_reps.ndim != 3 or self.region_reps.ndim != 3 or self.probs.ndim != 2:
            raise UsageError(
                f"FeatureTable: attr_reps {self.attr_reps.shape}, region_reps {self.region_reps.shape}, probs "
                f"{self.probs.shape}; expected (N, A, D), (N, P, D), (N, sumC)"
            )
        if not (self.region_reps.shape[0] == self.probs.shape[0] == n):
            raise UsageError(
                f"FeatureTable: row counts differ (attr_reps {n}, region_reps {self.region_reps.shape[0]}, "
                f"probs {self.probs.shape[0]}); give one row per image in each"
            )

    def __len__(self) -> int:
        return int(self.attr_reps.shape[0])

    def take(self, rows: Sequence[int] | np.ndarray) -> "FeatureTable":
        rows = np.asarray(rows, dtype=np.int64)
        return FeatureTable(self.attr_reps[rows], self.region_reps[rows], self.probs[rows])

    @classmethod
    def concat(cls, tables: Sequence["FeatureTable"]) -> "FeatureTable":
        return cls(
            np.concatenate([t.attr_reps for t in tables]),
            np.concatenate([t.region_reps for t in tables]),
            np.concatenate([t.probs for t in tables]),
        )


# ---- pure math ------------------------------------------------------------------------------------
def global_features(attr_reps: np.ndarray, lam: np.ndarray, W: np.ndarray, astar: int) -> np.ndarray:
    """Eq. 7 ``F(reps, a*)`` -> (N, G) float32 (runtime.features.global_representation)."""
    return global_representation(attr_reps, lam, W, astar)


_SMALL_GEMM_ROWS = 8  # OpenBLAS runs products this small on the calling thread (threaded small gemms stalled
# 8-16 ms on the busy 2-core machine, 0.2 ms in blocks of 8 rows: measured for 250 x 320 @ 320 x 128)


def project_rows(attr_reps: np.ndarray, lam: np.ndarray, W: np.ndarray, astar: int) -> np.ndarray:
    """Eq. 7 for a few rows (candidates), in blocks of 8 rows so that BLAS stays on this thread -> (m, G) float32.

    Every block has the same shape (the last is zero-padded), so a row's result does not depend on which rows
    share its block: the same image gives bit-identical features as a query and as any candidate subset (a
    ragged last block takes another BLAS kernel with another summation order on some CPUs, e.g. AMD EPYC)."""
    Ws = W[int(astar)].astype(np.float32, copy=False)
    x = (np.asarray(attr_reps, np.float32) * lam[int(astar)].astype(np.float32)[None, :, None]).reshape(-1, Ws.shape[0])
    out = np.empty((len(x), Ws.shape[1]), np.float32)
    full = len(x) - len(x) % _SMALL_GEMM_ROWS
    for s in range(0, full, _SMALL_GEMM_ROWS):
        out[s:s + _SMALL_GEMM_ROWS] = x[s:s + _SMALL_GEMM_ROWS] @ Ws
    if full < len(x):
        pad = np.zeros((_SMALL_GEMM_ROWS, x.shape[1]), np.float32)
        pad[:len(x) - full] = x[full:]
        out[full:] = (pad @ Ws)[:len(x) - full]
    return out


def _dots(qv: np.ndarray, g: np.ndarray) -> np.ndarray:
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


def _rows_per_chunk(Q: int, width: int) -> int:
    """Gallery rows per block so that a (Q, rows, width) float64 temporary stays near 32 MB."""
    return max(1, min(_CHUNK, (4 << 20) // max(1, Q * width)))


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


def onehot_probs(probs: np.ndarray, schema: Schema, manip: dict[int, int]) -> np.ndarray:
    """Copy of probs (Q, sumC) with each manipulated attribute's block replaced by a one-hot."""
    out = np.array(probs, dtype=np.float32, copy=True)
    offsets = np.concatenate([[0], np.cumsum(schema.num_classes)])
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


# ---- scoring one request ----------------------------------------------------------------------------
def fsn_sets(manip: dict[int, int]) -> list[int]:
    """Weight sets a request uses: [0] without manipulation, else [1+a for each manipulated a] (sorted)."""
    return [0] if not manip else [1 + a for a in sorted(manip)]


def score(
    params: SearchParams,
    query: FeatureTable,
    request: Request,
    gallery: FeatureTable,
    method: str,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Distances (Q, M) in float64 from each query row (all under the same ``request``) to ``gallery`` rows.

    ``query`` need not be part of ``gallery`` (an uploaded image's features); ``rows`` selects gallery rows
    (default all). Smaller is better.
    """
    if method not in METHODS:
        raise UsageError(f"unknown search method {method!r}; valid: {', '.join(METHODS)}")
    schema = params.schema
    rows = np.arange(len(gallery), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    Q, M = len(query), len(rows)
    out = np.zeros((Q, M), np.float64)
    if M == 0 or Q == 0:
        return out
    if method == "fsn_region":
        plan = region_plan(request, schema, params.region_weight)
        qa = substitute(query.attr_reps, params.prototypes, plan.attr_subst).astype(np.float64)
        qr = np.array(query.region_reps, dtype=np.float32, copy=True)
        for p, v in plan.pair_subst.items():
            a = schema.attr_index(schema.region_pairs[p][1])
            qr[:, p] = params.prototypes[a][v]
        qr = qr.astype(np.float64)
        w = np.concatenate([plan.attr_w, plan.pair_w])
        qrep = np.concatenate([qa, qr], 1)  # (Q, A+P, D) float64
        step = _rows_per_chunk(Q, qrep.shape[1] * qrep.shape[2])
        for s in range(0, M, step):
            r = rows[s:s + step]
            g = np.concatenate([gallery.attr_reps[r], gallery.region_reps[r]], 1).astype(np.float64)
            diff = qrep[:, None] - g[None]  # (Q, m, A+P, D)
            out[:, s:s + len(r)] = np.einsum("qmrd,qmrd->qmr", diff, diff) @ w
        return out
    manip = image_level(request, schema)
    if method == "attribute":
        qv = onehot_probs(query.probs, schema, manip)
        step = _rows_per_chunk(Q, qv.shape[1])
        for s in range(0, M, step):
            r = rows[s:s + step]
            out[:, s:s + len(r)] = sq_dist(qv, gallery.probs[r])
        return out
    # fsn / no_aam
    qa = substitute(query.attr_reps, params.prototypes, manip)
    sets = fsn_sets(manip)
    for astar in sets:
        qf = project_rows(qa, params.lam, params.W, astar)  # the candidates' own routine: a query's twin is 0 apart
        step = _rows_per_chunk(Q, qf.shape[1])
        for s in range(0, M, step):
            r = rows[s:s + step]
            out[:, s:s + len(r)] += sq_dist(qf, project_rows(gallery.attr_reps[r], params.lam, params.W, astar))
    out /= len(sets)
    return out


def gallery_global_sq(params: SearchParams, table: FeatureTable, astar: int) -> np.ndarray:
    """Squared norms (N,) float64 of F(table, a*), cached on the table."""
    key = ("F2", astar)
    hit = table._cache.get(key)
    if hit is None or hit[0] is not params:
        sq = np.empty(len(table), np.float64)
        for s in range(0, len(table), _CHUNK):  # F in chunks: nothing (N, G) is kept
            f = global_features(table.attr_reps[s:s + _CHUNK], params.lam, params.W, astar)
            sq[s:s + _CHUNK] = (f.astype(np.float64) ** 2).sum(1)
        hit = (params, sq)
        table._cache[key] = hit
    return hit[1]


def rep_norms(table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """Squared norms (N, A) and (N, P) in float64 of every representation, cached on the table."""
    hit = table._cache.get("norms")
    if hit is None:
        n = len(table)
        an = np.empty((n, table.attr_reps.shape[1]), np.float64)
        rn = np.empty((n, table.region_reps.shape[1]), np.float64)
        for s in range(0, n, _CHUNK):  # chunks bound the float64 temporaries
            an[s:s + _CHUNK] = (table.attr_reps[s:s + _CHUNK].astype(np.float64) ** 2).sum(-1)
            rn[s:s + _CHUNK] = (table.region_reps[s:s + _CHUNK].astype(np.float64) ** 2).sum(-1)
        hit = (an, rn)
        table._cache["norms"] = hit
    return hit


def _cached(table: FeatureTable, key: tuple, params: SearchParams | None, make) -> np.ndarray:
    hit = table._cache.get(key)
    if hit is None or hit[0] is not params:
        hit = (params, make())
        table._cache[key] = hit
    return hit[1]


def _take_cols(fn, rows: np.ndarray, n: int) -> np.ndarray:
    """``fn(sel)`` on the selected gallery rows: a slice-free full pass when most rows are kept (no gather copy)."""
    if len(rows) == n and (n == 0 or (rows[0] == 0 and rows[-1] == n - 1 and bool(np.all(np.diff(rows) == 1)))):
        return fn(slice(None))
    if len(rows) * 4 >= n:
        return fn(slice(None))[:, rows]
    return fn(rows)


SCREEN_TOL = 1e-4  # float32 screening margin, relative to the squared norms involved (>> float32 rounding)


def screen_f32(
    params: SearchParams, query: FeatureTable, request: Request, gallery: FeatureTable, method: str, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 distances (Q, M) via one BLAS product per space with cached squared norms, and a per-query bound
    (Q,) on their rounding error (the float64 :func:`score` may differ by at most that much)."""
    schema, n = params.schema, len(gallery)
    Q = len(query)
    if method == "fsn_region":
        plan = region_plan(request, schema, params.region_weight)
        qa = substitute(query.attr_reps, params.prototypes, plan.attr_subst)
        qr = np.array(query.region_reps, dtype=np.float32, copy=True)
        for p, v in plan.pair_subst.items():
            qr[:, p] = params.prototypes[schema.attr_index(schema.region_pairs[p][1])][v]
        w = np.concatenate([plan.attr_w, plan.pair_w])
        ga_n, gr_n = rep_norms(gallery)
        gw = np.concatenate([ga_n, gr_n], 1) @ w  # (N,) float64, cheap
        qn = np.concatenate([(qa.astype(np.float64) ** 2).sum(-1), (qr.astype(np.float64) ** 2).sum(-1)], 1) @ w
        A, P, D = qa.shape[1], qr.shape[1], qa.shape[2]
        qwa = (qa * plan.attr_w[None, :, None].astype(np.float32)).reshape(Q, A * D)
        qwr = (qr * plan.pair_w[None, :, None].astype(np.float32)).reshape(Q, P * D)
        fa = gallery.attr_reps.reshape(n, A * D)
        fr = gallery.region_reps.reshape(n, P * D)

        def dots(sel):
            out = _dots(qwa, fa[sel])
            if P:
                out += _dots(qwr, fr[sel])
            return out

        d = _take_cols(dots, rows, n)
        d *= -2.0
        d += gw[rows].astype(np.float32)[None, :]
        d += qn.astype(np.float32)[:, None]
        tol = SCREEN_TOL * (qn + gw[rows].max(initial=0.0))
        return np.maximum(d, 0.0), tol
    manip = image_level(request, schema)
    if method == "attribute":
        qv = onehot_probs(query.probs, schema, manip)
        gsq = _cached(gallery, ("P2",), None, lambda: (gallery.probs.astype(np.float64) ** 2).sum(1))
        qsq = (qv.astype(np.float64) ** 2).sum(1)
        d = _take_cols(lambda sel: _dots(qv, gallery.probs[sel]), rows, n)
        d *= -2.0
        d += gsq[rows].astype(np.float32)[None, :]
        d += qsq.astype(np.float32)[:, None]
        return np.maximum(d, 0.0), SCREEN_TOL * (qsq + gsq[rows].max(initial=0.0))
    # fsn / no_aam in the representation space (no (N, G) cache of global features per set):
    # F_s(q).F_s(g) = reps(g) . v_s with v_s = lam_s (x) (W_s F_s(q)); the mean over the sets is one pass
    qa = substitute(query.attr_reps, params.prototypes, manip)
    sets = fsn_sets(manip)
    A, D = qa.shape[1], qa.shape[2]
    v = np.zeros((Q, A * D), np.float64)
    qsq = np.zeros(Q, np.float64)
    gsq = np.zeros(len(rows), np.float64)
    for astar in sets:
        qf = global_features(qa, params.lam, params.W, astar).astype(np.float64)
        v += (qf @ params.W[astar].T.astype(np.float64)) * np.repeat(params.lam[astar].astype(np.float64), D)[None]
        qsq += (qf ** 2).sum(1)
        gsq += gallery_global_sq(params, gallery, astar)[rows]
    S = len(sets)
    v, qsq, gsq = v / S, qsq / S, gsq / S
    fa = gallery.attr_reps.reshape(n, A * D)
    d = _take_cols(lambda sel: _dots(v.astype(np.float32), fa[sel]), rows, n)
    d *= -2.0
    d += gsq.astype(np.float32)[None, :]
    d += qsq.astype(np.float32)[:, None]
    # rounding bound: the norms, and the dot through the representations (|reps . v| <= |reps| |v|)
    rep_max = _cached(gallery, ("repmax",), None,
                      lambda: float(np.sqrt(rep_norms(gallery)[0].sum(1).max(initial=0.0))))  # over all rows: a bound
    tol = SCREEN_TOL * (qsq + gsq.max(initial=0.0) + 2.0 * np.linalg.norm(v, axis=1) * rep_max)
    return np.maximum(d, 0.0), tol


def exact_topk(
    params: SearchParams, query: FeatureTable, request: Request, gallery: FeatureTable, method: str,
    rows: np.ndarray, k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k: (Q, k) gallery rows best first and their float64 distances, the same as :func:`score` +
    :func:`topk_rows` (ties to the smaller row). Float32 BLAS screening keeps every row within its rounding bound
    of the k-th distance; only those are re-scored in float64."""
    rows = np.asarray(rows, dtype=np.int64)
    Q = len(query)
    out_rows = np.empty((Q, k), np.int64)
    out_d = np.empty((Q, k), np.float64)
    d32, tol = screen_f32(params, query, request, gallery, method, rows)
    for i in range(Q):
        di = d32[i]
        kth = np.partition(di, k - 1)[k - 1] if len(di) > k else di.max()
        cand = np.flatnonzero(di <= kth + 2.0 * tol[i])
        d64 = score(params, query.take([i]), request, gallery, method, rows[cand])[0]
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


# ---- the Searcher -----------------------------------------------------------------------------------
def request_method(request: Request, method: str) -> str:
    """The scoring one request gets under ``method``: ``fsn_region`` scores only requests that name a region
    (section 4.4); a plain request is scored as ``fsn``, as the gallery does for an fsn bundle."""
    return "fsn" if method == "fsn_region" and not request.region else method


class ExactSearcher:
    """Exact search over a FeatureTable with one method (the evaluation Searcher and the ANN recall reference).

    Method ``fsn_region`` is what a gallery of an fsn bundle does: region requests get the section 4.4 scoring,
    plain ones the global representation (:func:`request_method`)."""

    def __init__(self, params: SearchParams, features: FeatureTable, method: str = "fsn"):
        if method not in METHODS:
            raise UsageError(f"unknown search method {method!r}; valid: {', '.join(METHODS)}")
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
            for s in range(0, len(idx_arr), 256):
                part = idx_arr[s:s + 256]
                out[part] = exact_topk(self.params, self.features.take(query_rows[part]), req, self.features,
                                       request_method(req, self.method), gallery_rows, k)[0]
        return out
