"""The gallery: stored features, predicted attributes, metadata and one hnswlib index per global space F(I, a*).

Design (measured in benchmarks/bench_gallery.py): A+1 hnsw indices, one per weight set a* (0 = none, 1+a);
a query with one manipulation asks that set's index; several manipulations ask each of their indices for
candidates and re-rank the union exactly (the mean of the squared distances, docs/design.md). Every ANN result
list is re-scored in float64 from the stored representations (eq. 7 for the candidates only), so distances
and tie order equal the exact search's up to float32 rounding of the projection.
Region requests (fsn bundles, section 4.4) on galleries above REGION_EXACT_BELOW take ``max(50 k, 1000)``
candidates from the set-0 index (with the request's image-level substitution) and re-score them exactly with
fsn_region. Filters: a filter keeping under
FILTER_EXACT_BELOW of the gallery is searched exactly over the kept rows; otherwise the indices are asked for
k / (kept fraction) candidates and post-filtered, asking for more until k pass. Small galleries and
``exact=True`` use exact search (float32 screening + float64 re-scoring, scoring.exact_topk). Updates (add,
remove = hnsw mark_deleted, metadata) run under a write lock; :meth:`save` publishes a new generation
atomically (gallery/store.py).
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import GalleryError, SchemaError, UsageError
from fashionsearchnet.gallery import ann, store
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.gallery.rwlock import RWLock
from fashionsearchnet.gallery.scoring import (
    FeatureTable,
    Request,
    SearchParams,
    candidate_substitution,
    check_k,
    exact_topk,
    fsn_sets,
    global_features,
    image_level,
    project_rows,
    score,
    substitute,
)

log = logging.getLogger(__name__)

FORMAT = "fsn-gallery"
FORMAT_VERSION = 1
ANN_METHODS = ("fsn", "no_aam")
ARRAYS = ("attr_reps", "region_reps", "probs", "attr_boxes")
EXACT_BELOW = 2000  # galleries (or filtered subsets) this small are searched exactly
FILTER_EXACT_BELOW = 0.1  # a filter keeping less than this fraction of the gallery: exact search over the kept rows
REGION_CANDIDATES_PER_K, REGION_CANDIDATES_MIN = 50, 1000  # approximate fsn_region: candidates re-scored exactly
# exact fsn_region reads every stored representation (~0.38 ms per 1k items, no cached global features), the
# approximate one costs ~8-13 ms (hnsw k=1500): measured 3.7 vs 8.3 ms at 20k items, 28-38 vs 9-13 ms at 100k
REGION_EXACT_BELOW = 30_000


@dataclass
class Result:
    """One search result."""

    id: str
    item_id: str | None
    path: str
    distance: float
    predicted: dict[str, tuple[str, float]]
    metadata: dict[str, str]
    row: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "item_id": self.item_id, "path": self.path, "distance": self.distance,
                "predicted": {a: {"value": v, "confidence": c} for a, (v, c) in self.predicted.items()},
                "metadata": self.metadata}


@dataclass
class SearchResult:
    results: list[Result]
    request: Request
    method: str
    exact: bool
    candidates: int  # items the search could return (alive, matching the filters, not the query itself)


@dataclass
class BundleRef:
    """What binds a gallery to its bundle."""

    sha256: str
    path: str
    method: str


def predicted_attributes(probs: np.ndarray, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max value index (N, A) int64 and its probability (N, A) float32 per attribute block."""
    offs = np.concatenate([[0], np.cumsum(schema.num_classes)])
    idx = np.stack([probs[:, offs[a]:offs[a + 1]].argmax(1) for a in range(len(offs) - 1)], 1)
    conf = np.stack([probs[:, offs[a]:offs[a + 1]].max(1) for a in range(len(offs) - 1)], 1)
    return idx.astype(np.int64), conf.astype(np.float32)


class Gallery:
    """A searchable catalogue. Build with :meth:`create` + :meth:`add` + :meth:`save`, reopen with :meth:`open`."""

    def __init__(self, root: Path, schema: Schema, params: SearchParams, bundle: BundleRef, hnsw: HnswConfig,
                 features: FeatureTable, boxes: np.ndarray, records: list[dict[str, Any]], deleted: np.ndarray,
                 indices: dict[int, Any] | None, generation: int | None, gen_dir: Path | None):
        self.root = Path(root)
        self.schema, self.params, self.bundle, self.hnsw = schema, params, bundle, hnsw
        self.features, self.boxes, self.records, self.deleted = features, boxes, records, deleted
        self.indices = indices
        self.generation, self._gen_dir = generation, gen_dir
        self._dirty: set[str] = set()
        self._files: dict[str, str] = {}  # sha256 of the loaded generation's files
        self._lock = RWLock()
        self._reindex()

    # ---- construction ---------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, schema: Schema, params: SearchParams, bundle: BundleRef,
               hnsw: HnswConfig | None = None) -> "Gallery":
        """A new, empty gallery in memory (nothing is written until :meth:`save`)."""
        A, D = len(schema.attributes), params.dim
        P, C = len(schema.region_pairs), sum(schema.num_classes)
        feats = FeatureTable(np.zeros((0, A, D), np.float32), np.zeros((0, P, D), np.float32), np.zeros((0, C), np.float32))
        hnsw = hnsw or HnswConfig()
        g = cls(Path(root), schema, params, bundle, hnsw, feats, np.zeros((0, A, 4), np.float32), [],
                np.zeros(0, bool), None, None, None)
        if bundle.method in ANN_METHODS:
            g.indices = {s: ann.new_index(params.global_dim, 1024, hnsw) for s in range(A + 1)}
        g._dirty = {"all"}
        return g

    @classmethod
    def open(cls, path: str | Path, bundle: Any | None = None, ef: int | None = None) -> "Gallery":
        """Open and verify a published gallery; ``bundle`` (a runtime Bundle) must be the one it was built with."""
        root = Path(path)
        with store.locked(root, exclusive=False) if root.is_dir() else _nolock():
            manifest, gdir, gen = store.load_generation(root)
            mpath = gdir / store.MANIFEST
            if manifest.get("format") != FORMAT:
                raise GalleryError(f"{mpath}: field 'format' is {manifest.get('format')!r}, not {FORMAT!r}; not a gallery")
            version = manifest.get("format_version")
            if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
                raise GalleryError(
                    f"{mpath}: format_version {version!r} is not one this version reads (1..{FORMAT_VERSION}); "
                    "re-index the catalogue with this version (`fsn index BUNDLE DATA --out GALLERY`)"
                )
            ref = BundleRef(**manifest["bundle"])
            schema = Schema.from_dict(manifest["schema"], source=str(mpath))
            params = _load_params(gdir / "params.npz", schema, float(manifest["region_weight"]))
            arrays = {name: _load_npy(gdir / f"{name}.npy") for name in ARRAYS}
            items = store.read_items(gdir / "items.json")
            records, deleted = items["records"], np.asarray(items["deleted"], bool)
            n = len(records)
            A, P = len(schema.attributes), len(schema.region_pairs)
            store.check_arrays(gdir, arrays, {"attr_reps": (n, A, params.dim), "region_reps": (n, P, params.dim),
                                              "probs": (n, sum(schema.num_classes)), "attr_boxes": (n, A, 4)})
            hnsw = HnswConfig.from_dict(manifest["hnsw"])
            if ef is not None:
                hnsw = HnswConfig(hnsw.M, hnsw.ef_construction, int(ef))
            indices = None
            if ref.method in ANN_METHODS:
                indices = {s: ann.load(gdir / f"index_{s}.bin", params.global_dim, hnsw)
                           for s in range(len(schema.attributes) + 1)}
                for s, idx in indices.items():
                    if idx.get_current_count() != n:
                        raise GalleryError(f"{gdir}/index_{s}.bin: {idx.get_current_count()} items, expected {n}; re-index")
        feats = FeatureTable(arrays["attr_reps"], arrays["region_reps"], arrays["probs"])
        g = cls(root, schema, params, ref, hnsw, feats, arrays["attr_boxes"], records, deleted, indices, gen, gdir)
        g._files = dict(manifest["files"])
        if bundle is not None:
            g.check_bundle(bundle)
        log.info("opened gallery %s: %d items (%d removed), generation %d", root, n, int(deleted.sum()), gen)
        return g

    def check_bundle(self, bundle: Any) -> None:
        """Refuse a bundle other than the one this gallery was built with."""
        if bundle.sha256 != self.bundle.sha256:
            raise GalleryError(
                f"{self.root}: built with bundle sha256 {self.bundle.sha256[:12]}... ({self.bundle.path}), but "
                f"{bundle.path} is {bundle.sha256[:12]}...; features of different models are not comparable: use "
                f"that bundle or re-index: fsn index {bundle.path} DATA --out {self.root} --force"
            )

    # ---- lookups ------------------------------------------------------------------------------------
    def _reindex(self) -> None:
        self._by_id = {r["id"]: i for i, r in enumerate(self.records) if not self.deleted[i]}
        by_item: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            if not self.deleted[i] and r.get("item_id"):
                by_item.setdefault(r["item_id"], []).append(i)
        self._by_item = by_item
        self._pred, self._conf = predicted_attributes(self.features.probs, self.schema)
        self._columns: list[str] | None = None
        self._colcache: dict[str, tuple[dict[str, int], np.ndarray]] = {}

    def __len__(self) -> int:
        """Number of searchable (not removed) items."""
        return len(self._by_id)

    @property
    def method(self) -> str:
        return self.bundle.method

    @property
    def metadata_columns(self) -> list[str]:
        """Metadata column names over all items (computed on first use after an update)."""
        if self._columns is None:
            cols: dict[str, None] = {}
            for r in self.records:
                cols.update(dict.fromkeys(r.get("metadata", {})))
            self._columns = list(cols)
        return self._columns

    def _column(self, key: str) -> tuple[dict[str, int], np.ndarray]:
        """A metadata column (or item_id) as {value: code} and (N,) int32 codes (-1: missing), cached until the
        next update (a Python pass over the records per filtered search cost 5 ms per 20k items)."""
        hit = self._colcache.get(key)
        if hit is None:
            if key == "item_id":
                raw = [r.get("item_id") for r in self.records]
            else:
                raw = [r.get("metadata", {}).get(key) for r in self.records]
            values: dict[str, int] = {}
            codes = np.array([-1 if v is None else values.setdefault(v, len(values)) for v in raw], np.int32)
            hit = self._colcache[key] = (values, codes)
        return hit

    def row_of(self, key: str) -> int:
        """Row of a gallery item by id (its image path) or item_id (when that names one item)."""
        if key in self._by_id:
            return self._by_id[key]
        rows = self._by_item.get(key)
        if rows and len(rows) == 1:
            return rows[0]
        if rows:
            raise UsageError(f"item_id {key!r} names {len(rows)} gallery images; give one image id, e.g. {self.records[rows[0]]['id']!r}")
        raise GalleryError(f"{self.root}: no item {key!r} in the gallery (ids are image paths or item_id values)")

    def result(self, row: int, distance: float) -> Result:
        r = self.records[row]
        pred = {a.name: (a.values[p], c)
                for a, p, c in zip(self.schema.attributes, self._pred[row].tolist(), self._conf[row].tolist())}
        return Result(r["id"], r.get("item_id"), r.get("path", r["id"]), float(distance), pred,
                      dict(r.get("metadata", {})), int(row))

    # ---- updates ------------------------------------------------------------------------------------
    def add(self, features: FeatureTable, records: Sequence[dict[str, Any]], boxes: np.ndarray | None = None,
            progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Add items: ``records[i]`` = {"id", "item_id", "path", "metadata"}; returns their rows."""
        n = len(features)
        if len(records) != n:
            raise UsageError(f"add: {n} feature rows but {len(records)} records; give one record per row")
        A = len(self.schema.attributes)
        if features.attr_reps.shape[1:] != self.features.attr_reps.shape[1:] or \
                features.region_reps.shape[1:] != self.features.region_reps.shape[1:] or \
                features.probs.shape[1] != self.features.probs.shape[1]:
            raise UsageError(
                f"add: feature shapes {features.attr_reps.shape[1:]}/{features.region_reps.shape[1:]}/"
                f"{features.probs.shape[1:]} do not match the gallery's; extract with the gallery's bundle"
            )
        boxes = np.zeros((n, A, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32)
        ids = [str(r["id"]) for r in records]
        dup = next((i for i in ids if i in self._by_id), None)
        if dup is None and len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
        if dup is not None:
            raise GalleryError(f"{self.root}: item {dup!r} is already in the gallery; remove it first or update its metadata")
        with self._lock.write():
            start = len(self.records)
            rows = np.arange(start, start + n, dtype=np.int64)
            if self.indices is not None:
                for s, idx in self.indices.items():
                    for b in range(0, n, 8192):
                        sl = slice(b, b + 8192)
                        ann.add(idx, global_features(features.attr_reps[sl], self.params.lam, self.params.W, s),
                                rows[sl], self.hnsw.threads)
                        if progress:
                            progress(len(rows[sl]))
            self.features = FeatureTable.concat([self.features, features])
            self.boxes = np.concatenate([self.boxes, boxes])
            self.records.extend({"id": str(r["id"]), "item_id": r.get("item_id"), "path": str(r.get("path", r["id"])),
                                 "metadata": {str(k): str(v) for k, v in (r.get("metadata") or {}).items()}}
                                for r in records)
            self.deleted = np.concatenate([self.deleted, np.zeros(n, bool)])
            self._dirty |= {"arrays", "items", "indices"}
            self._reindex()
        return rows

    def remove(self, keys: Sequence[str]) -> int:
        """Remove items by id (hnsw mark_deleted; the rows stay as tombstones). Returns how many were removed."""
        rows = [self.row_of(k) for k in keys]
        with self._lock.write():
            for r in rows:
                if self.indices is not None:
                    for idx in self.indices.values():
                        idx.mark_deleted(int(r))
                self.deleted[r] = True
            self._dirty |= {"items", "indices"}
            self._reindex()
        return len(rows)

    def update_metadata(self, key: str, metadata: dict[str, str]) -> None:
        """Merge ``metadata`` into an item's metadata (an empty value deletes the column for that item)."""
        for k in metadata:
            if str(k) in self.schema.names or str(k) == "item_id":
                raise UsageError(f"metadata key {k!r} is {'an attribute' if k != 'item_id' else 'the item id'}: "
                                 f"a filter on it would never reach the column; pick another key (e.g. {k}_tag)")
        row = self.row_of(key)
        with self._lock.write():
            md = dict(self.records[row].get("metadata", {}))
            for k, v in metadata.items():
                if v == "" or v is None:
                    md.pop(k, None)
                else:
                    md[str(k)] = str(v)
            self.records[row] = dict(self.records[row], metadata=md)
            self._columns = None
            self._colcache = {}
            self._dirty.add("items")

    def save(self, crash_hook: Callable[[str], None] | None = None) -> int:
        """Publish the current state as a new generation (atomic; see gallery/store.py)."""
        with self._lock.read():
            A = len(self.schema.attributes)
            everything = "all" in self._dirty or self._gen_dir is None
            writers: dict[str, Callable[[Path], None]] = {}
            reuse: dict[str, Path] = {}

            def npy(arr):
                return lambda p: store.write_file(p, lambda f: np.save(f, arr, allow_pickle=False))

            arrays = {"attr_reps": self.features.attr_reps, "region_reps": self.features.region_reps,
                      "probs": self.features.probs, "attr_boxes": self.boxes}
            for name, arr in arrays.items():
                if everything or "arrays" in self._dirty:
                    writers[f"{name}.npy"] = npy(arr)
                else:
                    reuse[f"{name}.npy"] = self._gen_dir / f"{name}.npy"
            if everything:
                writers["params.npz"] = lambda p: store.write_file(p, lambda f: _save_params(f, self.params))
            else:
                reuse["params.npz"] = self._gen_dir / "params.npz"
            if everything or "items" in self._dirty:
                items = json.dumps({"records": self.records, "deleted": self.deleted.tolist()}).encode("utf-8")
                writers["items.json"] = lambda p: store.write_file(p, lambda f: f.write(items))
            else:
                reuse["items.json"] = self._gen_dir / "items.json"
            if self.indices is not None:
                for s, idx in self.indices.items():
                    name = f"index_{s}.bin"
                    if everything or "indices" in self._dirty:
                        writers[name] = lambda p, idx=idx: _save_index(idx, p)
                    else:
                        reuse[name] = self._gen_dir / name
            old = self._files
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION,
                "bundle": {"sha256": self.bundle.sha256, "path": self.bundle.path, "method": self.bundle.method},
                "schema": self.schema.to_dict(), "region_weight": self.params.region_weight,
                "hnsw": self.hnsw.to_dict(), "items": len(self.records), "alive": len(self),
                "dims": {"A": A, "D": self.params.dim, "P": len(self.schema.region_pairs), "G": self.params.global_dim},
                "files": {k: v for k, v in old.items() if k in reuse},
            }
            gen, self._files = store.publish(self.root, manifest, writers, reuse, self.generation, crash_hook)
            self.generation, self._gen_dir = gen, self.root / f"gen-{gen:06d}"
            self._dirty = set()
            return gen

    # ---- search -------------------------------------------------------------------------------------
    def filter_mask(self, filters: Sequence[str] | None) -> np.ndarray:
        """Rows allowed by ``["attr=value", "column=value", ...]`` (predicted attributes or metadata)."""
        mask = ~self.deleted
        for f in filters or ():
            if "=" not in f:
                raise UsageError(f"--filter {f!r}: expected key=value with key an attribute or a metadata column")
            key, value = (s.strip() for s in f.split("=", 1))
            if key in self.schema.names:
                a = self.schema.attr_index(key)
                v = self.schema.value_index(key, value)  # SchemaError listing the valid values
                mask &= self._pred[:, a] == v
            elif key == "item_id" or key in self.metadata_columns:
                values, codes = self._column(key)
                mask &= codes == values.get(value, -1)
            else:
                raise SchemaError(
                    f"--filter {f!r}: unknown key {key!r}; valid: attributes {', '.join(self.schema.names)}; "
                    f"metadata {', '.join(['item_id'] + self.metadata_columns)}"
                )
        return mask

    def query_features(self, query: str | FeatureTable) -> tuple[FeatureTable, int | None]:
        if isinstance(query, FeatureTable):
            if len(query) != 1:
                raise UsageError(f"query features: {len(query)} rows; give one image's features")
            return query, None
        row = self.row_of(str(query))
        return self.features.take([row]), row

    def search(self, query: str | FeatureTable, request: Request | None = None, k: int = 10,
               filters: Sequence[str] | None = None, exact: bool | None = None, exclude_self: bool = True) -> SearchResult:
        """Search by a gallery item (id) or an image's features, with an optional manipulation and filters."""
        request = request or Request()
        request.validate(self.schema)
        with self._lock.read():
            if len(self) == 0:
                raise GalleryError(f"{self.root}: the gallery is empty; add items with `fsn index` before searching")
            k = check_k(k, len(self))
            q, qrow = self.query_features(query)
            mask = self.filter_mask(filters)
            filtered = bool(filters) and int(mask.sum()) < len(self)
            if exclude_self and qrow is not None:
                mask[qrow] = False
            allowed = int(mask.sum())
            method = self._search_method(request)
            if allowed == 0:
                return SearchResult([], request, method, True, 0)
            kk = min(k, allowed)
            if self.indices is None or method not in ANN_METHODS + ("fsn_region",):
                use_exact = True  # the attribute baseline has no approximate index
            else:  # a filter keeping a small fraction: exact over the kept rows beats walking the graph
                small = allowed <= (REGION_EXACT_BELOW if method == "fsn_region" else EXACT_BELOW) or (
                    filtered and allowed < FILTER_EXACT_BELOW * len(self))
                use_exact = exact if exact is not None else small
            if use_exact:
                rows, d = exact_topk(self.params, q, request, self.features, method, np.flatnonzero(mask), kk)
                rows, d = rows[0], d[0]
            else:
                rows, d = self._ann_post_filtered(q, request, method, kk, mask, allowed if filtered else len(self))
            order = np.lexsort((rows, d))[:kk]
            results = [self.result(int(rows[i]), float(d[i])) for i in order]
            return SearchResult(results, request, method, bool(use_exact), allowed)

    def _search_method(self, request: Request) -> str:
        if request.region and self.bundle.method == "fsn" and self.features.region_reps.shape[1] > 0:
            return "fsn_region"
        return self.bundle.method

    def _ann_post_filtered(self, q: FeatureTable, request: Request, method: str, k: int, mask: np.ndarray,
                           kept: int) -> tuple[np.ndarray, np.ndarray]:
        """Ask the indices without a filter for ``want / (kept fraction)`` candidates (x1.5 + 10 when filtered), drop
        the rows ``mask`` refuses, and ask twice as many until ``k`` pass or the whole gallery was asked."""
        frac = kept / max(len(self), 1)  # the filter's kept fraction
        want = k if frac >= 1.0 else int(k / frac * 1.5) + 10
        search = self._region_ann if method == "fsn_region" else self._ann
        while True:
            rows, d = search(q, request, min(want, len(self)), mask)
            if len(rows) >= k or want >= len(self):
                return rows, d
            want *= 2

    def _region_ann(self, q: FeatureTable, request: Request, k: int, mask: np.ndarray):
        """fsn_region, approximate: ``max(50 k, 1000)`` candidates from the set-0 index with the request's image-level
        substitution (what the non-region methods search), re-scored exactly with fsn_region (section 4.4)."""
        manip = candidate_substitution(request, self.schema)
        qa = substitute(q.attr_reps, self.params.prototypes, manip)
        qf = _project_one(qa[0], self.params.lam[0], self.params.W[0])
        per = min(max(REGION_CANDIDATES_PER_K * k, REGION_CANDIDATES_MIN), len(self))
        labels, _ = ann.query(self.indices[0], qf[None], per, self.hnsw.ef)
        rows = labels[0][mask[labels[0]]]
        return rows, score(self.params, q, request, self.features, "fsn_region", rows)[0]

    def _ann(self, q: FeatureTable, request: Request, k: int, mask: np.ndarray):
        """``k`` (+1 for an excluded query item) candidates from the hnsw index of each weight set the request uses,
        ``mask``-ed, scored in float64 from the stored representations (several sets: the union of their candidates,
        the mean of the squared distances over the sets). Query-side math avoids multi-threaded BLAS (tiny
        products stall on a busy machine)."""
        if self.indices is None:
            raise GalleryError(f"{self.root}: method {self.method} has no approximate index; search exactly")
        manip = image_level(request, self.schema)
        qa = substitute(q.attr_reps, self.params.prototypes, manip)
        sets = fsn_sets(manip)
        per = k if len(sets) == 1 else max(4 * k, self.hnsw.ef)
        per = min(per + int(not mask.all()), len(self))
        qfs = {s: _project_one(qa[0], self.params.lam[s], self.params.W[s]) for s in sets}
        cands = [ann.query(self.indices[s], qfs[s][None], per, self.hnsw.ef)[0][0] for s in sets]
        rows = np.unique(np.concatenate(cands)) if len(sets) > 1 else cands[0]
        rows = rows[mask[rows]]
        return rows, self._candidate_distances(qfs, rows)

    def _candidate_distances(self, qfs: dict[int, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Mean over the sets of the float64 squared distances from the stored representations (eq. 7 for the
        candidates only; no hnswlib get_items, no cached global features)."""
        reps = self.features.attr_reps[rows]
        d = np.zeros(len(rows), np.float64)
        for s, qf in qfs.items():
            g = project_rows(reps, self.params.lam, self.params.W, s).astype(np.float64)
            d += ((g - qf) ** 2).sum(1)
        return d / len(qfs)


def _project_one(reps: np.ndarray, lam_row: np.ndarray, W_s: np.ndarray) -> np.ndarray:
    """Eq. 7 for one image without BLAS: (A, D) reps, (A,) lam, (A*D, G) W -> (G,) float64."""
    x = (reps.astype(np.float64) * lam_row.astype(np.float64)[:, None]).reshape(-1)
    return np.einsum("k,kg->g", x, W_s, optimize=False)


# ---- file helpers -----------------------------------------------------------------------------------
class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GalleryError(f"{path}: cannot read ({e}); the file is damaged, re-index the gallery") from None


def _save_index(idx: Any, path: Path) -> None:
    ann.save(idx, path)
    with open(path, "rb+") as f:
        import os

        os.fsync(f.fileno())


def _save_params(f: io.BufferedWriter, params: SearchParams) -> None:
    arrays = {f"prototypes_{a}": p for a, p in enumerate(params.prototypes)}
    np.savez(f, lam=params.lam, W=params.W, **arrays)


def _load_params(path: Path, schema: Schema, region_weight: float) -> SearchParams:
    try:
        with np.load(path, allow_pickle=False) as z:
            protos = [z[f"prototypes_{a}"] for a in range(len(schema.attributes))]
            return SearchParams(schema, protos, z["lam"], z["W"], region_weight)
    except (OSError, ValueError, KeyError) as e:
        raise GalleryError(f"{path}: cannot read the search parameters ({e}); re-index the gallery") from None
