"""``fsn index``: extract a catalogue's features with a bundle (batched, resumable) and publish a gallery.

DATA is a dataset folder (``attributes.csv``, every row) or a plain folder of images (recursive). Features are
written per batch to ``GALLERY/.work/chunk_NNNNNN.npz`` (tmp + rename); a rerun with the same bundle and the
same image list skips the chunks already there. When every chunk exists the gallery is built from the stored
features and published atomically; the work folder is then removed.
"""
from __future__ import annotations

import filecmp
import hashlib
import json
import logging
import os
import posixpath
import shutil
import unicodedata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fashionsearchnet.errors import GalleryError
from fashionsearchnet.gallery import store
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.gallery.gallery import BundleRef, Gallery
from fashionsearchnet.search.table import FeatureTable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
WORK = ".work"
WORK_ADD = ".work-add"


def catalogue_id(rel: str) -> str:
    """The gallery id of an image: its path relative to the catalogue folder, normalised (``a/./b`` -> ``a/b``).
    Raises ValueError (with the reason) for a path outside the folder, or one a terminal or a log line could not
    show as one line."""
    text = rel.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ValueError("is an absolute path; ids are paths inside the catalogue folder")
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise ValueError("lies outside the catalogue folder")
    bad = next((c for c in norm if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(f"contains {'a byte that is not UTF-8' if unicodedata.category(bad) == 'Cs' else repr(bad)}")
    return norm


def list_catalogue(data: str | Path) -> list[dict[str, Any]]:
    """Records {"id", "item_id", "path", "metadata"} for every image of a dataset folder or image folder.

    ``id`` is the image's path relative to the folder as the CSV (or the folder tree) names it; ``path`` is the
    file it resolves to now (symlinked images and symlinked sub-folders are followed). Paths outside the folder
    (``../``, absolute), ids with control characters or non-UTF-8 bytes are refused up front, all at once."""
    root = Path(data).expanduser().resolve()
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    if (root / "attributes.csv").is_file():
        from fashionsearchnet.data.dataset import load_dataset

        ds = load_dataset(root)
        for i, p in enumerate(ds.images):
            rel = ds.image_cells[i]
            try:
                key = catalogue_id(rel)
            except ValueError as e:
                problems.append(f"{root / 'attributes.csv'}: line {int(ds.lines[i])}: field 'image' = {rel!r} {e}; "
                                "copy the image into the dataset folder (a symlink inside it is fine) and name it "
                                "relative to the CSV")
                continue
            md = dict(ds.metadata[i]) if ds.metadata else {}
            md["split"] = str(ds.splits[i])
            out.append({"id": key, "item_id": ds.item_ids[i], "path": str(p), "metadata": md})
    else:
        if not root.is_dir():
            raise GalleryError(f"{root}: not a folder; give a dataset folder (attributes.csv) or a folder of images")
        for p in _walk_images(root, problems):
            rel = p.relative_to(root).as_posix()
            try:
                key = catalogue_id(rel)
                real = p.resolve(strict=True)
            except ValueError as e:
                problems.append(f"{p}: file name {ascii(rel)} {e}; rename the file")
                continue
            except (OSError, RuntimeError) as e:
                problems.append(f"{p}: cannot be resolved ({e}); fix or remove the symlink")
                continue
            out.append({"id": key, "item_id": None, "path": str(real), "metadata": {}})
        if not out and not problems:
            raise GalleryError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) and no attributes.csv; nothing to index")
    if problems:
        from fashionsearchnet.errors import DatasetError

        raise DatasetError(problems)
    return out


def _walk_images(root: Path, problems: list[str]) -> list[Path]:
    """Image files under ``root`` in sorted order, following symlinked folders once each (no loops); broken or
    looping symlinks are reported in ``problems``."""
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if p.is_file():
                found.append(p)
            else:
                problems.append(f"{p}: a broken or looping symlink, not an image file; fix or remove it")
    return sorted(found)


def normalized_boxes(attr_boxes: np.ndarray, map_hw: tuple[int, int]) -> np.ndarray:
    """Inclusive conv5 cell boxes (N, A, 4) -> fractions of the image [x0, y0, x1, y1) in [0, 1]."""
    h, w = map_hw
    return ((attr_boxes + np.array([0, 0, 1, 1], np.float32)) / np.array([w, h, w, h], np.float32)).astype(np.float32)


def _plan_key(bundle_sha: str, records: list[dict[str, Any]], batch_size: int) -> str:
    h = hashlib.sha256(bundle_sha.encode())
    h.update(str(batch_size).encode())
    for r in records:
        h.update(r["path"].encode() + b"\0")
    return h.hexdigest()


def _write_chunk(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    store.write_file(tmp, lambda f: np.savez(f, **arrays))
    os.replace(tmp, path)


def index_catalogue(bundle_path: str | Path, data: str | Path, out: str | Path, backend: str = "auto",
                    batch_size: int = 32, hnsw: HnswConfig | None = None, force: bool = False,
                    progress: Callable[[int], None] | None = None,
                    on_total: Callable[[int, int], None] | None = None, ray: bool = False,
                    ray_address: str | None = None, ray_workers: int = 2) -> Gallery:
    """Extract, build and publish. ``on_total(total, done)`` is told the work before it starts (for a bar).
    ``ray``: extract on a Ray cluster (``ray_address``, local when None) with ``ray_workers`` extractor actors
    (:mod:`distributed_index`; not resumable: a rerun extracts again)."""
    from fashionsearchnet.runtime.bundle import Bundle

    out = Path(out)
    bundle = Bundle.open(bundle_path)
    ptr = store.read_pointer(out) if out.is_dir() else None
    if ptr is not None and not force:
        raise GalleryError(f"{out}: already holds a gallery (generation {ptr['generation']}); pass --force to "
                           "rebuild it, or update it in place with `fsn update`")
    if ray:
        table, boxes, records = _extract_on_ray(bundle, bundle_path, data, backend, batch_size, ray_address,
                                                ray_workers, progress, on_total)
    else:
        records = list_catalogue(data)
        table, boxes = extract_catalogue(bundle, records, out / WORK, backend, batch_size, progress, on_total)
    ref = BundleRef(bundle.sha256, str(Path(bundle_path).resolve()), bundle.method)
    g = Gallery.create(out, bundle.schema, bundle.params, ref, hnsw)
    g.generation = None if ptr is None else int(ptr["generation"])  # --force replaces that generation
    g.add(table, records, boxes)
    g.save()
    shutil.rmtree(out / WORK, ignore_errors=True)
    return g


def _extract_on_ray(bundle: Any, bundle_path: str | Path, data: str | Path, backend: str, batch_size: int,
                    address: str | None, workers: int, progress: Callable[[int], None] | None,
                    on_total: Callable[[int, int], None] | None) -> tuple[FeatureTable, np.ndarray, list[dict]]:
    """:func:`index_catalogue`'s extraction on Ray: the address and the backend are checked before any work."""
    from fashionsearchnet.gallery import distributed_index as dx
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    started = dx.connect(address)
    try:
        FeatureExtractor(bundle, backend=backend).close()  # a backend the workers could not load: say so now
        records = list_catalogue(data)
        if on_total:
            on_total(len(records), 0)
        f = dx.extract_rows_ray(Path(bundle_path).resolve(), records, batch_size, workers, backend,
                                progress=progress)
    finally:
        if started:
            import ray

            ray.shutdown()
    return FeatureTable(f["attr_reps"], f["region_reps"], f["probs"]), f["attr_boxes"], records


def extract_catalogue(bundle: Any, records: list[dict[str, Any]], work: Path, backend: str = "auto",
                      batch_size: int = 32, progress: Callable[[int], None] | None = None,
                      on_total: Callable[[int, int], None] | None = None) -> tuple[FeatureTable, np.ndarray]:
    """Features and normalised attribute boxes of ``records`` with a runtime Bundle, batch by batch into
    ``work/chunk_NNNNNN.npz`` (a rerun with the same bundle and list resumes); the caller removes ``work``."""
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    key = _plan_key(bundle.sha256, records, batch_size)
    plan = work / "plan.json"
    if work.is_dir() and (not plan.is_file() or json.loads(plan.read_text()).get("key") != key):
        log.info("%s: previous partial run used another bundle or image list; starting over", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    plan_text = json.dumps({"key": key, "bundle": bundle.sha256, "items": len(records)}).encode()
    store.write_file(plan, lambda f: f.write(plan_text))
    nchunks = (len(records) + batch_size - 1) // batch_size
    done = [i for i in range(nchunks) if (work / f"chunk_{i:06d}.npz").is_file()]
    if on_total:
        on_total(len(records), min(len(done) * batch_size, len(records)))
    if done:
        log.info("resuming: %d of %d batches already extracted", len(done), nchunks)
    todo = [i for i in range(nchunks) if i not in set(done)]
    if todo:
        with FeatureExtractor(bundle, backend=backend) as fx:
            for i in todo:
                recs = records[i * batch_size:(i + 1) * batch_size]
                f = fx.extract([r["path"] for r in recs], batch_size=batch_size)
                boxes = normalized_boxes(f.attr_boxes, f.aams.shape[-2:])
                _write_chunk(work / f"chunk_{i:06d}.npz", {"attr_reps": f.attr_reps, "region_reps": f.region_reps,
                                                           "probs": f.probs, "attr_boxes": boxes})
                if progress:
                    progress(len(recs))
    parts = []
    for i in range(nchunks):
        with np.load(work / f"chunk_{i:06d}.npz") as z:
            parts.append({k: z[k] for k in z.files})
    table = FeatureTable(*(np.concatenate([p[k] for p in parts]) for k in ("attr_reps", "region_reps", "probs")))
    return table, np.concatenate([p["attr_boxes"] for p in parts])


def add_catalogue(gallery: Gallery, bundle: Any, data: str | Path, backend: str = "auto", batch_size: int = 32,
                  progress: Callable[[int], None] | None = None,
                  on_total: Callable[[int, int], None] | None = None) -> list[str]:
    """Extract and add the images of ``data`` (dataset folder or image folder) that ``gallery`` does not hold yet
    (by id); returns the added ids. Nothing is saved: call ``gallery.save()``. Work files: GALLERY/.work-add."""
    gallery.check_bundle(bundle)
    records = new_records(gallery, list_catalogue(data))
    if not records:
        return []
    work = gallery.root / WORK_ADD
    table, boxes = extract_catalogue(bundle, records, work, backend, batch_size, progress, on_total)
    gallery.add(table, records, boxes)
    return [r["id"] for r in records]


def new_records(gallery: Gallery, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of ``listed`` the gallery does not hold yet. One whose id is in the gallery is skipped when its
    file has the same bytes as the stored item's (logged: rerunning an add is harmless); when the content differs,
    the add is refused naming both files (it would otherwise be skipped silently)."""
    new, same = [], 0
    for r in listed:
        row = gallery._by_id.get(r["id"])
        if row is None:
            new.append(r)
            continue
        old = gallery.records[row]["path"]
        if not _same_content(old, r["path"]):
            raise GalleryError(
                f"{r['path']}: its id {r['id']!r} (path relative to the catalogue folder) is already in the gallery for "
                f"another image, {old} (the files differ); remove that item first (`fsn update GALLERY --remove {r['id']}`) or give the "
                "new image another name")
        same += 1
    if same:
        log.info("%d image(s) already in the gallery (same id, same file): skipped", same)
    return new


def _same_content(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def finish_add(gallery: Gallery) -> None:
    """Remove the extraction work files of :func:`add_catalogue` (after a successful save)."""
    shutil.rmtree(gallery.root / WORK_ADD, ignore_errors=True)
