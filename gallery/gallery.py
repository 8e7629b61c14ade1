"""The gallery: stored features, the catalogue of records and one hnswlib index per global space F(I, a*).

Design (measured in benchmarks/perf/bench_gallery.py): A+1 hnsw indices, one per weight set a* (0 = none, 1+a);
a query with one manipulation asks that set's index; several manipulations ask each of their indices for
candidates and re-rank the union exactly (gallery/approximate.py). Which search runs is gallery/planner.py's
choice; exact search and scoring are the search core's (fashionsearchnet.search). Updates (add, remove = hnsw
mark_deleted, metadata) run under a write lock; :meth:`save` publishes a new generation atomically
(gallery/files.py writes the files, gallery/store.py publishes them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import GalleryError, UsageError
from fashionsearchnet.gallery import ann, files, store
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.gallery.approximate import AnnSearch
from fashionsearchnet.gallery.catalogue import Catalogue, Result, make_record
from fashionsearchnet.gallery.files import ANN_METHODS, BundleRef
from fashionsearchnet.gallery.planner import gallery_method, use_exact
from fashionsearchnet.gallery.rwlock import RWLock
from fashionsearchnet.search.compose import require_description
from fashionsearchnet.search.exact import check_k, exact_topk
from fashionsearchnet.search.params import PARAMS_FILE, SearchParams
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.scorers import effective_method
from fashionsearchnet.search.table import FeatureTable

log = logging.getLogger(__name__)

__all__ = ["BundleRef", "Gallery", "Result", "SearchResult"]


@dataclass
class SearchResult:
    results: list[Result]
    request: Request
    method: str
    exact: bool
    candidates: int  # items the search could return (alive, matching the filters, not the query itself)


class Gallery:
    """A searchable catalogue. Build with :meth:`create` + :meth:`add` + :meth:`save`, reopen with :meth:`open`."""

    def __init__(self, root: Path, schema: Schema, params: SearchParams, bundle: BundleRef, hnsw: HnswConfig,
                 features: FeatureTable, boxes: np.ndarray, records: list[dict[str, Any]], deleted: np.ndarray,
                 indices: dict[int, Any] | None, generation: int | None, gen_dir: Path | None):
        self.root = Path(root)
        self.schema, self.params, self.bundle, self.hnsw = schema, params, bundle, hnsw
        self.features, self.boxes, self.indices = features, boxes, indices
        self.generation, self._gen_dir = generation, gen_dir
        self._dirty: set[str] = set()
        self._files: dict[str, str] = {}  # sha256 of the loaded generation's files
        self._lock = RWLock()
        self.catalogue = Catalogue(schema, records, deleted, features.probs, str(self.root))

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
        gen = files.read_generation(root, ef)
        a = gen.arrays
        feats = FeatureTable(a["attr_reps"], a["region_reps"], a["probs"])
        g = cls(root, gen.schema, gen.params, gen.bundle, gen.hnsw, feats, a["attr_boxes"], gen.records, gen.deleted,
                gen.indices, gen.number, gen.folder)
        g._files = dict(gen.manifest["files"])
        if bundle is not None:
            g.check_bundle(bundle)
        log.info("opened gallery %s: %d items (%d removed), generation %d", root, len(gen.records),
                 int(gen.deleted.sum()), gen.number)
        return g

    def check_bundle(self, bundle: Any) -> None:
        """Refuse a bundle other than the one this gallery was built with."""
        if bundle.sha256 != self.bundle.sha256:
            raise GalleryError(
                f"{self.root}: built with bundle sha256 {self.bundle.sha256[:12]}... ({self.bundle.path}), but "
                f"{bundle.path} is {bundle.sha256[:12]}...; features of different models are not comparable: use "
                f"that bundle or re-index: fsn index {bundle.path} DATA --out {self.root} --force"
            )

    # ---- the catalogue ----------------------------------------------------------------------------------
    @property
    def records(self) -> list[dict[str, Any]]:
        return self.catalogue.records

    @property
    def deleted(self) -> np.ndarray:
        return self.catalogue.deleted

    @property
    def _by_id(self) -> dict[str, int]:
        return self.catalogue.by_id

    @property
    def _by_item(self) -> dict[str, list[int]]:
        return self.catalogue.by_item

    def __len__(self) -> int:
        """Number of searchable (not removed) items."""
        return len(self.catalogue)

    @property
    def method(self) -> str:
        return self.bundle.method

    @property
    def metadata_columns(self) -> list[str]:
        return self.catalogue.metadata_columns

    def row_of(self, key: str) -> int:
        """Row of a gallery item by id (its image path) or item_id (when that names one item)."""
        return self.catalogue.row_of(key)

    def result(self, row: int, distance: float) -> Result:
        return self.catalogue.result(row, distance)

    def filter_mask(self, filters: Sequence[str] | None) -> np.ndarray:
        """Rows allowed by ``["attr=value", "column=value", ...]`` (predicted attributes or metadata)."""
        return self.catalogue.filter_mask(filters)

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
                        ann.add(idx, global_representation(features.attr_reps[sl], self.params.lam, self.params.W, s),
                                rows[sl], self.hnsw.threads)
                        if progress:
                            progress(len(rows[sl]))
            self.features = FeatureTable.concat([self.features, features])
            self.boxes = np.concatenate([self.boxes, boxes])
            self.records.extend(make_record(r) for r in records)
            self.catalogue.deleted = np.concatenate([self.deleted, np.zeros(n, bool)])
            self._dirty |= {"arrays", "items", "indices"}
            self.catalogue.refresh(self.features.probs)
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
            self.catalogue.refresh(self.features.probs)
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
            self.catalogue.forget_columns()
            self._dirty.add("items")

    def save(self, crash_hook: Callable[[str], None] | None = None) -> int:
        """Publish the current state as a new generation (atomic; see gallery/store.py)."""
        with self._lock.read():
            everything = "all" in self._dirty or self._gen_dir is None
            writers: dict[str, Callable[[Path], None]] = {}
            reuse: dict[str, Path] = {}

            def plan(name: str, dirty: str, make: Callable[[], Callable[[Path], None]]) -> None:
                if everything or dirty in self._dirty:
                    writers[name] = make()
                else:
                    reuse[name] = self._gen_dir / name

            arrays = {"attr_reps": self.features.attr_reps, "region_reps": self.features.region_reps,
                      "probs": self.features.probs, "attr_boxes": self.boxes}
            for name, arr in arrays.items():
                plan(f"{name}.npy", "arrays", lambda arr=arr: files.npy_writer(arr))
            plan(PARAMS_FILE, "all", lambda: files.params_writer(self.params))
            plan("items.json", "items", lambda: files.items_writer(self.records, self.deleted))
            for s, idx in (self.indices or {}).items():
                plan(f"index_{s}.bin", "indices", lambda idx=idx: files.index_writer(idx))
            manifest = files.manifest_of(self.bundle, self.schema, self.params, self.hnsw, len(self.records), len(self))
            manifest["files"] = {k: v for k, v in self._files.items() if k in reuse}
            gen, self._files = store.publish(self.root, manifest, writers, reuse, self.generation, crash_hook)
            self.generation, self._gen_dir = gen, self.root / f"gen-{gen:06d}"
            self._dirty = set()
            return gen

    # ---- search -------------------------------------------------------------------------------------
    def query_features(self, query: str | FeatureTable | None) -> tuple[FeatureTable | None, int | None]:
        if query is None:  # a composed query (no image): the search core builds it from prototypes
            return None, None
        if isinstance(query, FeatureTable):
            if len(query) != 1:
                raise UsageError(f"query features: {len(query)} rows; give one image's features")
            return query, None
        row = self.row_of(str(query))
        return self.features.take([row]), row

    def search(self, query: str | FeatureTable | None, request: Request | None = None, k: int = 10,
               filters: Sequence[str] | None = None, exact: bool | None = None, exclude_self: bool = True) -> SearchResult:
        """Search by a gallery item (id) or an image's features, with an optional manipulation and filters;
        ``query`` None: a query composed from the request's attribute prototypes (search/compose.py)."""
        request = request or Request()
        request.validate(self.schema)
        if query is None:
            require_description(request, self.schema)
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
            method = effective_method(gallery_method(self.bundle.method, self.features.region_reps.shape[1]), request)
            if allowed == 0:
                return SearchResult([], request, method, True, 0)
            kk = min(k, allowed)
            exact_search = use_exact(method, self.indices is not None, allowed, len(self), filtered, exact)
            if exact_search:
                rows, d = exact_topk(self.params, q, request, self.features, method, np.flatnonzero(mask), kk)
                rows, d = rows[0], d[0]
            else:
                search = AnnSearch(self.params, self.features, self.indices, self.hnsw)
                rows, d = search.post_filtered(q, request, method, kk, mask, allowed if filtered else len(self),
                                               len(self))
            order = np.lexsort((rows, d))[:kk]
            results = [self.result(int(rows[i]), float(d[i])) for i in order]
            return SearchResult(results, request, method, bool(exact_search), allowed)
