"""One hnswlib index over one global space F(I, a*): build, add, mark deleted, save/load with ef re-applied.

hnswlib labels are gallery row numbers. hnswlib does not persist ``ef``; :func:`load` sets it again from the
gallery manifest. ``knn_query`` must not run while ``add_items`` runs: the Gallery serialises them with a lock.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hnswlib
import numpy as np

from fashionsearchnet.errors import GalleryError, UsageError


@dataclass(frozen=True)
class HnswConfig:
    """Defaults picked by benchmarks/perf/bench_hnsw_build.py (100k items, G=128): the fastest build whose recall@30
    stays >= 0.99 for the plain and a manipulated space (M=16, ef_construction=40: 0.9975 / 0.9965)."""

    M: int = 16
    ef_construction: int = 40
    ef: int = 128
    threads: int = 0  # 0: all cores for building; queries are single-threaded

    def __post_init__(self) -> None:
        for name in ("M", "ef_construction", "ef"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 2:
                raise UsageError(f"hnsw {name} = {v!r}: must be an integer >= 2")

    def to_dict(self) -> dict:
        return {"M": self.M, "ef_construction": self.ef_construction, "ef": self.ef}

    @classmethod
    def from_dict(cls, d: dict) -> "HnswConfig":
        return cls(int(d["M"]), int(d["ef_construction"]), int(d["ef"]))


def new_index(dim: int, capacity: int, cfg: HnswConfig) -> hnswlib.Index:
    idx = hnswlib.Index(space="l2", dim=int(dim))
    idx.init_index(max_elements=max(int(capacity), 1), ef_construction=cfg.ef_construction, M=cfg.M)
    idx.set_ef(cfg.ef)
    idx.set_num_threads(max(cfg.threads, 0) or -1)
    return idx


def add(idx: hnswlib.Index, vectors: np.ndarray, labels: np.ndarray, threads: int = 0) -> None:
    """Add rows (grows the index when needed)."""
    need = idx.get_current_count() + len(labels)
    if need > idx.get_max_elements():
        idx.resize_index(max(need, int(idx.get_max_elements() * 1.5)))
    if len(labels):
        idx.add_items(np.ascontiguousarray(vectors, np.float32), np.asarray(labels, np.int64), num_threads=threads or -1)


def query(
    idx: hnswlib.Index, vectors: np.ndarray, k: int, ef: int, allow: Callable[[int], bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (Q, k) int64, squared L2 distances (Q, k) float32); ``ef`` is raised to ``k`` when smaller."""
    idx.set_ef(max(int(ef), int(k)))
    try:
        labels, dist = idx.knn_query(np.ascontiguousarray(vectors, np.float32), k=int(k), num_threads=1, filter=allow)
    except RuntimeError as e:  # hnswlib: "Cannot return the results in a contigious 2D array..."
        raise GalleryError(
            f"the approximate index returned fewer than k={k} results ({e}); lower k or loosen the filter"
        ) from None
    return labels.astype(np.int64), dist


def save(idx: hnswlib.Index, path: Path) -> None:
    """Save the index; hnswlib's writer does not report a failed write (a full disk), so the size is checked."""
    try:
        idx.save_index(str(path))
    except RuntimeError as e:
        raise OSError(errno.EIO, f"cannot write the hnsw index ({e})", str(path)) from None
    want, got = idx.index_file_size(), os.path.getsize(path)
    if got != want:
        raise OSError(errno.ENOSPC, f"the hnsw index was written short ({got} of {want} bytes; disk full?)", str(path))


def load(path: Path, dim: int, cfg: HnswConfig) -> hnswlib.Index:
    idx = hnswlib.Index(space="l2", dim=int(dim))
    try:
        idx.load_index(str(path))
    except (RuntimeError, MemoryError, ValueError) as e:
        raise GalleryError(f"{path}: cannot load the hnsw index ({e}); the file is damaged, re-index the gallery") from None
    idx.set_ef(cfg.ef)
    return idx
