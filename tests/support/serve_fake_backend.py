"""A planted-truth SearchService for the HTTP tests: items with known attributes, distance = number of
attributes that differ from the (manipulated) query, ties by row. Counts concurrent calls; records the size
of every model batch (``batch_sizes``). An upload's "features" are its mean colour; ``model_delay_s`` makes
each model run take that long."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from fashionsearchnet.app.service_api import Answer, Box, Extracted, Prepared, QueryInfo
from fashionsearchnet.search.request import Request
from fashionsearchnet.data.synth import synthetic_schema
from fashionsearchnet.errors import GalleryError

PALETTE = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "white": (245, 245, 245)}


class FakeBackend:
    def __init__(self, root: Path, n: int = 24, gate: threading.Event | None = None, delay_s: float = 0.0,
                 model_delay_s: float = 0.0):
        self.schema = synthetic_schema()
        self.root = Path(root)
        self.gate, self.delay_s, self.model_delay_s = gate, delay_s, model_delay_s
        self.batch_sizes: list[int] = []
        self.model_threads: set[str] = set()
        self.search_threads: set[str] = set()
        self.loaded = False
        self.active = 0
        self.max_active = 0
        self._count_lock = threading.Lock()
        colors = list(PALETTE)
        self.items: list[dict[str, Any]] = []
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            attrs = {a.name: a.values[(i * (j + 1)) % len(a.values)] for j, a in enumerate(self.schema.attributes)}
            attrs["color"] = colors[i % len(colors)]
            rel = f"images/{i:03d}.png"
            (self.root / "images").mkdir(exist_ok=True)
            img = np.zeros((48, 32, 3), np.uint8)
            img[:] = PALETTE[attrs["color"]][::-1]
            cv2.imwrite(str(self.root / rel), img)
            self.items.append({"id": rel, "item_id": f"item{i // 2}", "attrs": attrs, "metadata": {"price": str(10 + i)}})

    def load(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.loaded = True

    def describe(self) -> dict[str, Any]:
        return {"gallery": str(self.root), "items": len(self.items), "method": "fake", "backend": "none"}

    def _pred(self, attrs: dict[str, str]) -> dict[str, dict[str, Any]]:
        return {a: {"value": v, "confidence": 0.9} for a, v in attrs.items()}

    def _filter(self, filters: Sequence[str]) -> list[int]:
        rows = list(range(len(self.items)))
        for f in filters:
            key, value = f.split("=", 1)
            rows = [r for r in rows if self.items[r]["attrs"].get(key, self.items[r]["metadata"].get(key)) == value]
        return rows

    def catalogue(self, offset: int, limit: int, filters: Sequence[str] = ()) -> tuple[int, list[dict[str, Any]]]:
        rows = self._filter(filters)
        return len(rows), [self._item(r) for r in rows[offset:offset + limit]]

    def _item(self, r: int, distance: float | None = None) -> dict[str, Any]:
        it = self.items[r]
        d = {"id": it["id"], "item_id": it["item_id"], "predicted": self._pred(it["attrs"]), "metadata": it["metadata"]}
        if distance is not None:
            d["distance"] = distance
        return d

    def image_path(self, item_id: str) -> Path:
        for it in self.items:
            if it["id"] == item_id:
                return self.root / it["id"]
        raise GalleryError(f"{self.root}: no item {item_id!r} in the gallery")

    def prepare(self, image: np.ndarray) -> Prepared:
        return Prepared(image, int(image.shape[1]), int(image.shape[0]))

    def extract_batch(self, prepared: Sequence[Prepared]) -> list[Extracted]:
        self.batch_sizes.append(len(prepared))
        self.model_threads.add(threading.current_thread().name)
        if self.model_delay_s:
            time.sleep(self.model_delay_s)
        return [Extracted(p.x.reshape(-1, 3).mean(0), p.width, p.height) for p in prepared]

    def search_extracted(self, query: Extracted, request: Request, filters: Sequence[str], k: int) -> Answer:
        self.search_threads.add(threading.current_thread().name)
        return self.search(query, request, filters, k)

    def search(self, query: np.ndarray | str | Extracted, request: Request, filters: Sequence[str], k: int) -> Answer:
        if isinstance(query, np.ndarray):
            query = self.extract_batch([self.prepare(query)])[0]
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if query is None:  # composed: only the described values count
                row, qid, h, w, attrs = None, None, 0, 0, {}
            elif isinstance(query, str):
                path = self.image_path(query)
                row = next(i for i, it in enumerate(self.items) if it["id"] == query)
                attrs = dict(self.items[row]["attrs"])
                h, w = 48, 32
                qid = query
            else:
                row, qid = None, None
                h, w = query.height, query.width
                mean = query.features
                color = min(PALETTE, key=lambda c: float(((np.array(PALETTE[c]) - mean) ** 2).sum()))
                attrs = {a.name: a.values[0] for a in self.schema.attributes}
                attrs["color"] = color
            shown = dict(attrs)
            for _region, attr, value in request.entries():
                attrs[attr] = value
            cand = [r for r in self._filter(filters) if r != row]
            dist = {r: float(sum(self.items[r]["attrs"][a] != v for a, v in attrs.items())) for r in cand}
            order = sorted(cand, key=lambda r: (dist[r], r))[:k]
            boxes = [Box("collar", "attribute", (0.25 * w, 0.0, 0.75 * w, 0.25 * h)),
                     Box("torso", "region", (0.1 * w, 0.2 * h, 0.9 * w, h))] if query is not None else []
            return Answer(QueryInfo(w, h, self._pred(shown), boxes, qid), [self._item(r, dist[r]) for r in order],
                          "fake", True, len(cand))
        finally:
            with self._count_lock:
                self.active -= 1
