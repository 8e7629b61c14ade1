"""A gallery generation on disk: ``manifest.json`` (format, bundle binding, schema, region weight, hnsw
settings, dims), ``params.npz`` (search/params.py), the feature arrays (``attr_reps``, ``region_reps``,
``probs``, ``attr_boxes`` .npy), ``items.json`` (records + tombstones) and one ``index_<s>.bin`` per weight
set. Publishing and checksums are gallery/store.py's job."""
from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import GalleryError
from fashionsearchnet.gallery import ann, store
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.search.params import PARAMS_FILE, SearchParams, load_params, save_params

FORMAT = "fsn-gallery"
FORMAT_VERSION = 1
ARRAYS = ("attr_reps", "region_reps", "probs", "attr_boxes")
ANN_METHODS = ("fsn", "no_aam")  # bundle methods with hnsw indices (one per weight set)


@dataclass
class BundleRef:
    """What binds a gallery to its bundle."""

    sha256: str
    path: str
    method: str


@dataclass
class Generation:
    """Everything read from one published generation."""

    manifest: dict[str, Any]
    folder: Path
    number: int
    bundle: BundleRef
    schema: Schema
    params: SearchParams
    hnsw: HnswConfig
    arrays: dict[str, np.ndarray]
    records: list[dict[str, Any]]
    deleted: np.ndarray
    indices: dict[int, Any] | None


def read_generation(root: Path, ef: int | None = None) -> Generation:
    """Read and check the current generation of the gallery at ``root`` (under its shared lock)."""
    with store.locked(root, exclusive=False) if root.is_dir() else nullcontext():
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
        params = load_params(gdir / PARAMS_FILE, schema, manifest.get("region_weight"), GalleryError,
                             "re-index the gallery")
        arrays = {name: load_npy(gdir / f"{name}.npy") for name in ARRAYS}
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
    return Generation(manifest, gdir, gen, ref, schema, params, hnsw, arrays, records, deleted, indices)


def manifest_of(bundle: BundleRef, schema: Schema, params: SearchParams, hnsw: HnswConfig, items: int,
                alive: int) -> dict[str, Any]:
    """The manifest fields of a generation (store.publish adds the files' checksums)."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "bundle": {"sha256": bundle.sha256, "path": bundle.path, "method": bundle.method},
        "schema": schema.to_dict(), "region_weight": params.region_weight,
        "hnsw": hnsw.to_dict(), "items": items, "alive": alive,
        "dims": {"A": len(schema.attributes), "D": params.dim, "P": len(schema.region_pairs), "G": params.global_dim},
    }


def npy_writer(arr: np.ndarray) -> Callable[[Path], None]:
    return lambda p: store.write_file(p, lambda f: np.save(f, arr, allow_pickle=False))


def params_writer(params: SearchParams) -> Callable[[Path], None]:
    return lambda p: store.write_file(p, lambda f: save_params(f, params))


def items_writer(records: list[dict[str, Any]], deleted: np.ndarray) -> Callable[[Path], None]:
    items = json.dumps({"records": records, "deleted": deleted.tolist()}).encode("utf-8")
    return lambda p: store.write_file(p, lambda f: f.write(items))


def index_writer(idx: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        ann.save(idx, path)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())

    return write


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GalleryError(f"{path}: cannot read ({e}); the file is damaged, re-index the gallery") from None
