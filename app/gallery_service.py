"""The gallery-backed search service: the kiosk's :class:`~fashionsearchnet.app.service_api.SearchService` on a
published gallery (gallery/gallery.py ``Gallery.search``) and its bundle (runtime/extractor.py
``FeatureExtractor``). No torch.

One extractor is shared by every request: model runs are serialised by a lock. The HTTP service batches
uploads (app/server/batcher.py): each request prepares its image (:meth:`GalleryService.prepare`), one worker
runs the model on a batch of them (:meth:`GalleryService.extract_batch`), and each request then searches in
its own thread (:meth:`GalleryService.search_extracted`); searches run concurrently under the gallery's own
read lock. The gallery follows
its folder (gallery/live.py): a generation published by ``fsn update`` is loaded in the background and
swapped in; each request works on the generation it started with.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashionsearchnet.app.service_api import Answer, Box, Extracted, Prepared, QueryInfo
from fashionsearchnet.errors import CatalogueFileError, GalleryError, ImageError
from fashionsearchnet.search.request import Request

log = logging.getLogger(__name__)

WARMUP_RUNS = 3


def query_info(feats: Any, schema: Any, width: int, height: int, item_id: str | None = None) -> QueryInfo:
    """QueryInfo of the first image of an extractor ``Features``: predicted attributes and pixel boxes."""
    pred = {a: {"value": v, "confidence": round(float(c), 4)} for a, (v, c) in feats.predicted[0].items()}
    lim = np.array([width, height, width, height], np.float64)
    clip = lambda b: tuple(float(v) for v in np.clip(np.asarray(b, np.float64), 0.0, lim))  # noqa: E731
    boxes = [Box(a.name, "attribute", clip(b)) for a, b in zip(schema.attributes, feats.pixel_boxes("attr")[0])]
    boxes += [Box(r.name, "region", clip(b)) for r, b in zip(schema.regions, feats.pixel_boxes("region")[0])]
    return QueryInfo(width, height, pred, boxes, item_id)


class GalleryService:
    """Open ``gallery`` (and the bundle it was built with, or ``bundle``) on ``load()``."""

    def __init__(self, gallery: str | Path, bundle: str | Path | None = None, backend: str = "auto",
                 threads: int = 0, cache_items: int = 512, poll_s: float = 1.0):
        self.gallery_path, self.bundle_path, self.backend_kind = Path(gallery), bundle, backend
        self.threads, self.cache_items, self.poll_s = threads, cache_items, poll_s
        self.live: Any = None
        self.fx: Any = None
        self._model_lock = threading.Lock()
        self._cache: OrderedDict[str, QueryInfo] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------------
    def load(self) -> None:
        from fashionsearchnet.gallery.live import LiveGallery
        from fashionsearchnet.runtime.bundle import Bundle
        from fashionsearchnet.runtime.extractor import FeatureExtractor

        live = LiveGallery(self.gallery_path, self.poll_s, check=self._check_generation, prepare=self._warm_gallery,
                           on_swap=lambda old, new: self._clear_cache())
        g = live.open()
        bundle = Bundle.open(self.bundle_path or g.bundle.path)
        g.check_bundle(bundle)
        self.fx = FeatureExtractor(bundle, backend=self.backend_kind, threads=self.threads)
        self.live = live
        self.warm_up()

    def _check_generation(self, g: Any) -> None:
        if len(g) == 0:
            raise GalleryError(f"{self.gallery_path}: the gallery is empty; index a catalogue with `fsn index`")
        if self.fx is not None:
            g.check_bundle(self.fx.bundle)

    @staticmethod
    def _warm_gallery(g: Any) -> None:
        first = next(iter(g._by_id))
        g.search(first, None, k=min(10, len(g)))

    def _clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    @property
    def gallery(self) -> Any:
        """The generation to use now (it follows `fsn update`); take it once per request."""
        if self.live is None:
            raise GalleryError(f"{self.gallery_path}: not loaded yet; call load() first")
        return self.live.current()

    def warm_up(self) -> None:
        """Run the model and a search a few times so the first shopper does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        for _ in range(WARMUP_RUNS):
            with self._model_lock:
                self.fx.extract(img, batch_size=1)
        self._warm_gallery(self.gallery)

    @property
    def schema(self):
        return self.gallery.schema

    def describe(self) -> dict[str, Any]:
        g = self.gallery
        d = {"gallery": str(self.gallery_path), "items": len(g), "generation": g.generation, "method": g.method,
             "backend": self.fx.backend_name, "bundle": str(self.fx.bundle.path)}
        if self.live.reload_error:
            d["reload_error"] = self.live.reload_error
        return d

    def close(self) -> None:
        if self.fx is not None:
            self.fx.close()

    # ---- catalogue ----------------------------------------------------------------------------------
    @staticmethod
    def _item(g: Any, row: int) -> dict[str, Any]:
        d = g.result(row, 0.0).to_dict()
        d.pop("distance", None)
        d.pop("path", None)
        return d

    def catalogue(self, offset: int, limit: int, filters: Sequence[str] = ()) -> tuple[int, list[dict[str, Any]]]:
        g = self.gallery
        rows = np.flatnonzero(g.filter_mask(list(filters)))
        return int(len(rows)), [self._item(g, int(r)) for r in rows[offset:offset + limit]]

    def image_path(self, item_id: str, g: Any = None) -> Path:
        """The item's image file, checked (gallery/catalogue_files.py): CatalogueFileError when it is missing or
        now resolves elsewhere than the file indexed."""
        from fashionsearchnet.gallery.catalogue_files import catalogue_image

        g = g or self.gallery
        return catalogue_image(g.records[g.row_of(item_id)])

    # ---- search -------------------------------------------------------------------------------------
    def _extract(self, image: Any):
        with self._model_lock:
            return self.fx.extract(image, batch_size=1)

    def _item_info(self, item_id: str, g: Any) -> QueryInfo:
        """Predicted attributes and attribute + region boxes of a gallery item (extracted once, cached)."""
        with self._cache_lock:
            if item_id in self._cache:
                self._cache.move_to_end(item_id)
                return self._cache[item_id]
        from fashionsearchnet.data.preprocess import read_image

        try:
            rgb = read_image(self.image_path(item_id, g))
        except CatalogueFileError:
            raise
        except ImageError as e:  # the catalogue's file, not the client's: a server-side fault
            raise CatalogueFileError(f"{e}; restore the catalogue image or remove the item") from None
        info = query_info(self._extract(rgb), g.schema, rgb.shape[1], rgb.shape[0], item_id)
        with self._cache_lock:
            self._cache[item_id] = info
            while len(self._cache) > self.cache_items:
                self._cache.popitem(last=False)
        return info

    def prepare(self, image: np.ndarray) -> Prepared:
        """A decoded RGB upload -> its preprocessed model input (no model run; any thread)."""
        x, size = self.fx.prepare(image)
        return Prepared(x, int(size[0]), int(size[1]))

    def extract_batch(self, prepared: Sequence[Prepared]) -> list[Extracted]:
        """One model run for several prepared uploads -> one :class:`Extracted` per upload, in order."""
        x = np.stack([p.x for p in prepared])
        size = np.array([[p.width, p.height] for p in prepared], np.float32)
        with self._model_lock:
            f = self.fx.extract_prepared(x, size)
        return [Extracted(f.take(i), p.width, p.height) for i, p in enumerate(prepared)]

    def search_extracted(self, query: Extracted, request: Request, filters: Sequence[str], k: int) -> Answer:
        """The search for an extracted upload (no model run: ANN search and scoring only)."""
        g = self.gallery
        info = query_info(query.features, g.schema, query.width, query.height)
        return self._answer(info, g.search(query.features.to_table(), request, k=k, filters=list(filters)))

    def search(self, query: np.ndarray | str | None, request: Request, filters: Sequence[str], k: int) -> Answer:
        if query is None:  # described values only (issue 24): no image, nothing to extract
            return self._answer(QueryInfo(0, 0, {}, [], None), self.gallery.search(None, request, k=k,
                                                                                    filters=list(filters)))
        if not isinstance(query, str):
            return self.search_extracted(self.extract_batch([self.prepare(query)])[0], request, filters, k)
        g = self.gallery
        row = g.row_of(query)
        item_id = g.records[row]["id"]
        info = self._item_info(item_id, g)
        return self._answer(info, g.search(item_id, request, k=k, filters=list(filters)))

    @staticmethod
    def _answer(info: QueryInfo, res: Any) -> Answer:
        results = []
        for r in res.results:
            d = r.to_dict()
            d.pop("path", None)
            results.append(d)
        return Answer(info, results, res.method, res.exact, res.candidates)
