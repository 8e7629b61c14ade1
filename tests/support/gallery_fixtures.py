"""Shared helpers for the gallery / scoring tests: a small schema and random or planted feature tables."""
from __future__ import annotations

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable

SCHEMA_DICT = {
    "attributes": [
        {"name": "category", "values": ["dress", "top", "skirt"]},
        {"name": "collar", "values": ["round", "v", "hood"]},
        {"name": "sleeve", "values": ["short", "long"]},
        {"name": "color", "values": ["red", "blue", "green", "white"]},
        {"name": "pattern", "values": ["plain", "striped"]},
    ],
    "regions": {
        "collar": {"from": ["collar"], "attributes": ["color"]},
        "sleeve": {"from": ["sleeve"], "attributes": ["color", "pattern"]},
        "torso": {"from": ["category", "color", "pattern"], "attributes": ["color", "pattern"],
                  "subtract": ["collar", "sleeve"], "primary": True},
    },
}


def schema() -> Schema:
    return Schema.from_dict(SCHEMA_DICT)


def random_params(sch: Schema, D: int = 4, G: int = 6, seed: int = 0, region_weight: float = 0.3) -> SearchParams:
    rng = np.random.default_rng(seed)
    A = len(sch.attributes)
    protos = [rng.normal(size=(len(a.values), D)).astype(np.float32) for a in sch.attributes]
    lam = rng.uniform(0.5, 1.5, size=(A + 1, A)).astype(np.float32)
    W = rng.normal(size=(A + 1, A * D, G)).astype(np.float32) / np.sqrt(A * D)
    return SearchParams(sch, protos, lam, W, region_weight)


def random_table(sch: Schema, n: int, D: int = 4, seed: int = 1) -> FeatureTable:
    rng = np.random.default_rng(seed)
    A, P, C = len(sch.attributes), len(sch.region_pairs), sum(sch.num_classes)
    probs = rng.uniform(size=(n, C)).astype(np.float32)
    return FeatureTable(
        rng.normal(size=(n, A, D)).astype(np.float32), rng.normal(size=(n, P, D)).astype(np.float32), probs
    )


def structured_table(params: SearchParams, n: int, seed: int = 1) -> FeatureTable:
    """Like a trained model's features: each representation = its value's prototype + noise (region
    representations share the item's attribute values), so the global spaces and fsn_region agree roughly."""
    sch = params.schema
    rng = np.random.default_rng(seed)
    A, D = len(sch.attributes), params.dim
    vals = np.stack([rng.integers(0, len(a.values), n) for a in sch.attributes], 1)
    reps = np.stack([params.prototypes[a][vals[:, a]] for a in range(A)], 1) + 0.6 * rng.normal(size=(n, A, D))
    pair_attr = [sch.attr_index(a) for _, a in sch.region_pairs]
    region = np.stack([params.prototypes[a][vals[:, a]] for a in pair_attr], 1)
    region = region + 0.8 * rng.normal(size=region.shape)
    return FeatureTable(reps.astype(np.float32), region.astype(np.float32),
                        rng.dirichlet(np.ones(sum(sch.num_classes)), n).astype(np.float32))


def reference_distance(params: SearchParams, q: dict, g: dict, manip: dict, method: str, region=None) -> float:
    """Slow per-pair reference written from docs/design.md (loops, no shared code with scoring.py)."""
    sch = params.schema
    A = len(sch.attributes)
    if method == "attribute":
        qv = q["probs"].astype(np.float64).copy()
        off = 0
        for a, attr in enumerate(sch.attributes):
            c = len(attr.values)
            if a in manip:
                qv[off:off + c] = 0
                qv[off + manip[a]] = 1
            off += c
        return float(((qv - g["probs"]) ** 2).sum())
    if method == "fsn_region":
        return reference_region_distance(params, q, g, manip, region or ())
    qa = q["attr"].astype(np.float64).copy()
    for a, v in manip.items():
        qa[a] = params.prototypes[a][v]
    sets = [0] if not manip else [1 + a for a in manip]
    total = 0.0
    for s in sets:
        fq = np.concatenate([qa[a] * params.lam[s, a] for a in range(A)]) @ params.W[s].astype(np.float64)
        fg = np.concatenate([g["attr"][a] * params.lam[s, a] for a in range(A)]) @ params.W[s].astype(np.float64)
        total += ((fq - fg) ** 2).sum()
    return total / len(sets)


def _mean_pair_sq_loop(rows) -> float:
    vals = [float(((np.asarray(rows[i], np.float64) - np.asarray(rows[j], np.float64)) ** 2).sum())
            for i in range(len(rows)) for j in range(i + 1, len(rows))]
    return sum(vals) / len(vals) if vals else 0.0


def reference_region_distance(params: SearchParams, q: dict, g: dict, manip: dict, region) -> float:
    """fsn_region by hand from docs/design.md: the fsn distance with the image-level ``manip`` plus the requests
    on the primary region, divided by the global scale, plus each region pair's squared distance (a requested
    pair's query side = the region prototype of the asked value) over the pair's scale, weighted ``weight``
    (requested collar/sleeve), ``primary_weight`` (requested torso) or ``region_weight * weight`` (untouched).
    Scales (uncalibrated params): the mean squared distance between two values' prototypes, through lam[0] and
    W[0]'s block for the global term (averaged over attributes), between region prototypes for a pair."""
    sch = params.schema
    A, D = len(sch.attributes), params.dim
    manip = dict(manip)
    req = {}
    for reg, attr, value in region:
        a = sch.names.index(attr)
        v = sch.attributes[a].values.index(value)
        req[sch.region_pairs.index((reg, attr))] = (reg, attr, v)
        if reg == sch.primary_region:
            manip[a] = v
    terms = params.region_terms
    if terms is None:
        gl = []
        for a in range(A):
            block = params.W[0][a * D:(a + 1) * D].astype(np.float64) * float(params.lam[0][a])
            gl.append(_mean_pair_sq_loop([np.asarray(p, np.float64) @ block for p in params.prototypes[a]]))
        gs = sum(gl) / A or 1.0
        scales = [(_mean_pair_sq_loop(params.region_prototype(r, a)) or 1.0) for r, a in sch.region_pairs]
        weight, primary_weight = 1.0, 0.0
    else:
        gs, scales = terms.global_scale, list(terms.pair_scales)
        weight, primary_weight = terms.weight, terms.primary_weight
    d = reference_distance(params, q, g, manip, "fsn") / gs
    for p, (reg, attr) in enumerate(sch.region_pairs):
        qr = np.asarray(q["region"][p], np.float64)
        if p in req:
            qr = np.asarray(params.region_prototype(reg, attr)[req[p][2]], np.float64)
            c = primary_weight if reg == sch.primary_region else weight
        else:
            c = params.region_weight * weight
        d += c * float(((qr - g["region"][p]) ** 2).sum()) / scales[p]
    return d * gs


def row(table: FeatureTable, i: int) -> dict:
    return {"attr": table.attr_reps[i], "region": table.region_reps[i], "probs": table.probs[i]}


def records(n: int, start: int = 0) -> list[dict]:
    """Records with an id, an item_id shared by pairs of images and a stock / price metadata column."""
    return [{"id": f"img/{i:05d}.jpg", "item_id": f"sku{i // 2}", "path": f"img/{i:05d}.jpg",
             "metadata": {"stock": "yes" if i % 3 else "no", "price": str(10 + i % 7)}} for i in range(start, start + n)]


def make_gallery(root, n: int = 60, method: str = "fsn", D: int = 4, G: int = 6, seed: int = 1, sha: str = "a" * 64,
                 save: bool = True, hnsw=None, structured: bool = False):
    from fashionsearchnet.gallery.ann import HnswConfig
    from fashionsearchnet.gallery.gallery import BundleRef, Gallery

    sch = schema()
    params = random_params(sch, D=D, G=G)
    g = Gallery.create(root, sch, params, BundleRef(sha, "/bundles/b1", method),
                       hnsw or HnswConfig(M=8, ef_construction=64, ef=32))
    t = structured_table(params, n, seed=seed) if structured else random_table(sch, n, D=D, seed=seed)
    g.add(t, records(n))
    if save:
        g.save()
    return g, t
