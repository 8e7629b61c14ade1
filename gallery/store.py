"""Crash-safe gallery folders: immutable generation directories published by an atomic pointer swap.

Layout::

    GALLERY/CURRENT            {"generation": 7, "dir": "gen-000007", "manifest_sha256": "..."}
    GALLERY/gen-000007/        gallery.json (lists the sha256 of every other file) + data files
    GALLERY/.lock              fcntl lock: exclusive while publishing, shared while loading

Publishing writes every file of the new generation into ``gen-N.partial/`` (each file fsynced), renames the
folder to ``gen-N``, fsyncs the gallery folder, then writes ``CURRENT.tmp``, fsyncs it and renames it over
``CURRENT`` (fsync again). A crash at any point leaves ``CURRENT`` naming a complete, verified generation;
leftovers are removed by the next writer. Unchanged files are hard-linked from the previous generation.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

from fashionsearchnet.errors import GalleryError
from fashionsearchnet.fileio import fsync_dir, sha256_file, verify_checksums

log = logging.getLogger(__name__)

POINTER = "CURRENT"
MANIFEST = "gallery.json"
LOCK = ".lock"
GEN_DIR = re.compile(r"gen-\d{6,}")


def write_file(path: Path, writer: Callable[[Any], None]) -> None:
    """Write ``path`` with ``writer(fileobj)`` and fsync it (an OSError names ``path``: a full disk says where)."""
    try:
        with open(path, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _reader_fd(root: Path) -> int | None:
    """A read-only descriptor on ``root/.lock`` for a shared lock (flock needs no write access). When the file does
    not exist and cannot be created (read-only file system, no write permission), None: no writer has ever
    published through this code there, and a reader never needs to write."""
    try:
        return os.open(root / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno in _READ_ONLY_ERRNOS:
            return None
        raise
    try:
        return os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno in _READ_ONLY_ERRNOS:
            log.debug("%s: read-only (%s); reading without the lock file", root, e.strerror)
            return None
        raise


def _writer_fd(root: Path) -> int:
    try:
        root.mkdir(parents=True, exist_ok=True)
        return os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno in _READ_ONLY_ERRNOS:
            why = "is on a read-only file system" if e.errno == errno.EROFS else "is not writable by this user"
            raise GalleryError(f"{root}: the gallery folder {why} ({e.strerror}); searching works there, but "
                               "updates need a writable copy: run the update where the gallery is writable "
                               "and deploy the result") from None
        raise


@contextlib.contextmanager
def locked(root: Path, exclusive: bool) -> Iterator[None]:
    """Cross-process lock on ``root/.lock`` (shared for readers, exclusive for the writer). Readers open the lock
    file read-only and need no write access at all (read-only deployments); a writer on a read-only or
    unwritable folder gets a GalleryError."""
    fd = _writer_fd(root) if exclusive else _reader_fd(root)
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_pointer(root: Path) -> dict[str, Any] | None:
    """The CURRENT pointer, or None when the folder holds no published gallery."""
    p = root / POINTER
    if not p.is_file():
        return None
    try:
        ptr = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        ptr = None
    ok = (isinstance(ptr, dict) and isinstance(ptr.get("generation"), int) and not isinstance(ptr["generation"], bool)
          and isinstance(ptr.get("dir"), str) and GEN_DIR.fullmatch(ptr["dir"]) is not None
          and isinstance(ptr.get("manifest_sha256"), str))
    if not ok:
        raise GalleryError(f"{p}: unreadable generation pointer (expected {{\"generation\": N, \"dir\": \"gen-NNNNNN\", "
                           "\"manifest_sha256\": ...}); restore the gallery from a backup or re-index it")
    return ptr


def load_generation(root: Path) -> tuple[dict[str, Any], Path, int]:
    """Verify the published generation (manifest and every file's sha256); returns (manifest, folder, generation).

    Call under ``locked(root, exclusive=False)``.
    """
    if not root.is_dir():
        raise GalleryError(f"{root}: gallery folder not found; create it with `fsn index BUNDLE DATA --out {root}`")
    ptr = read_pointer(root)
    if ptr is None:
        raise GalleryError(
            f"{root}: no published gallery here (no {POINTER} file); create it with `fsn index BUNDLE DATA --out {root}`"
        )
    gdir = root / ptr["dir"]
    mpath = gdir / MANIFEST
    if not mpath.is_file():
        raise GalleryError(f"{mpath}: missing; the gallery folder was damaged, re-index it")
    raw = mpath.read_bytes()
    if hashlib.sha256(raw).hexdigest() != ptr["manifest_sha256"]:
        raise GalleryError(f"{mpath}: sha256 does not match {POINTER}; the file was changed or truncated, re-index it")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise GalleryError(f"{mpath}: not valid JSON ({e}); re-index the gallery") from None
    check_manifest(manifest, mpath)
    verify_checksums(gdir, manifest.get("files", {}), GalleryError, MANIFEST, "from the gallery",
                     "the gallery was damaged, re-index it")
    return manifest, gdir, int(ptr["generation"])


def _bad(path: Path, field: str, want: str, got: Any) -> GalleryError:
    return GalleryError(f"{path}: field {field!r} must be {want}, got {type(got).__name__} {got!r:.60}; the file was "
                        "written by another tool or damaged: re-index the gallery")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_manifest(m: Any, path: Path) -> None:
    """A gallery manifest has the fields and types the reader uses (its checksum can match and it still be wrong)."""
    if not isinstance(m, dict):
        raise _bad(path, "(top level)", "an object", m)
    files = m.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise _bad(path, "files", "an object of file name -> sha256", files)
    if any("/" in k or "\\" in k or k.startswith(".") for k in files):
        raise _bad(path, "files", "plain file names inside the generation folder", sorted(files))
    b = m.get("bundle")
    if not isinstance(b, dict) or set(b) != {"sha256", "path", "method"} or not all(isinstance(v, str) for v in b.values()):
        raise _bad(path, "bundle", "an object {sha256, path, method} of strings", b)
    if not isinstance(m.get("schema"), dict):
        raise _bad(path, "schema", "an object", m.get("schema"))
    if not _number(m.get("region_weight")):
        raise _bad(path, "region_weight", "a number", m.get("region_weight"))
    h = m.get("hnsw")
    if not isinstance(h, dict) or not all(isinstance(h.get(k), int) and not isinstance(h.get(k), bool) and h[k] > 0
                                          for k in ("M", "ef_construction", "ef")):
        raise _bad(path, "hnsw", "an object of positive integers M, ef_construction, ef", h)


def read_items(path: Path) -> dict[str, Any]:
    """``items.json``: {"records": [{"id", "item_id", "path", "metadata"}...], "deleted": [bool...]}, checked."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        raise GalleryError(f"{path}: not valid JSON ({e}); re-index the gallery") from None
    if not isinstance(items, dict) or not isinstance(items.get("records"), list) or \
            not isinstance(items.get("deleted"), list):
        raise _bad(path, "records/deleted", "two lists", type(items).__name__ if not isinstance(items, dict) else
                   {k: type(v).__name__ for k, v in items.items()})
    recs, deleted = items["records"], items["deleted"]
    if len(deleted) != len(recs) or not all(isinstance(d, bool) for d in deleted):
        raise _bad(path, "deleted", f"{len(recs)} booleans (one per record)", f"{len(deleted)} entries")
    for i, r in enumerate(recs):
        ok = (isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("path", ""), str)
              and (r.get("item_id") is None or isinstance(r.get("item_id"), str))
              and isinstance(r.get("metadata", {}), dict)
              and all(isinstance(k, str) and isinstance(v, str) for k, v in r.get("metadata", {}).items()))
        if not ok:
            raise _bad(path, f"records[{i}]", "an object {id, item_id, path, metadata} of strings", r)
    return items


def check_arrays(gdir: Path, arrays: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    """Each stored array has its expected shape (rows = items) and a float dtype."""
    for name, want in shapes.items():
        arr = arrays[name]
        if tuple(arr.shape) != tuple(want) or arr.dtype.kind != "f":
            raise GalleryError(f"{gdir / (name + '.npy')}: {arr.dtype} array of shape {tuple(arr.shape)}, expected "
                               f"float of shape {tuple(want)} (items, ...); re-index the gallery")


def publish(
    root: Path,
    manifest: dict[str, Any],
    writers: dict[str, Callable[[Path], None]],
    reuse: dict[str, Path],
    expected_generation: int | None,
    crash_hook: Callable[[str], None] | None = None,
) -> tuple[int, dict[str, str]]:
    """Write a new generation atomically; returns its number and the sha256 of its files.

    ``writers[name](path)`` writes file ``name``; ``reuse[name]`` is an unchanged file of the previous generation
    (hard-linked). ``expected_generation`` is the generation the caller loaded (None for a new gallery): if another
    writer published since, the save is refused instead of silently dropping that writer's changes.
    ``crash_hook(stage)`` is for tests (it may kill the process at a stage).
    """
    hook = crash_hook or (lambda stage: None)
    with locked(root, exclusive=True):
        ptr = read_pointer(root)
        current = None if ptr is None else int(ptr["generation"])
        if current != expected_generation:
            raise GalleryError(
                f"{root}: the gallery changed since it was opened (generation {expected_generation} -> {current}); "
                "reopen it and apply the update again"
            )
        gen = (current or 0) + 1
        name = f"gen-{gen:06d}"
        for leftover in root.glob("gen-*"):  # from a crashed writer or older generations
            if leftover.name != (ptr or {}).get("dir"):
                shutil.rmtree(leftover, ignore_errors=True)
        part = root / f"{name}.partial"
        part.mkdir()
        files: dict[str, str] = {}
        for fname, path in reuse.items():
            try:
                os.link(path, part / fname)
            except OSError:
                shutil.copy2(path, part / fname)
            files[fname] = manifest["files"][fname] if fname in manifest.get("files", {}) else sha256_file(part / fname)
        for fname, writer in writers.items():
            writer(part / fname)
            hook(f"wrote:{fname}")
            files[fname] = sha256_file(part / fname)
        body = dict(manifest, files=files, generation=gen)
        raw = json.dumps(body, indent=1, sort_keys=True).encode("utf-8")
        write_file(part / MANIFEST, lambda f: f.write(raw))
        fsync_dir(part)
        hook("before-rename")
        os.rename(part, root / name)
        fsync_dir(root)
        hook("before-pointer")
        tmp = root / f"{POINTER}.tmp"
        pointer = {"generation": gen, "dir": name, "manifest_sha256": hashlib.sha256(raw).hexdigest()}
        write_file(tmp, lambda f: f.write(json.dumps(pointer).encode("utf-8")))
        os.replace(tmp, root / POINTER)
        fsync_dir(root)
        hook("published")
        if ptr is not None:
            shutil.rmtree(root / ptr["dir"], ignore_errors=True)
        log.info("published %s generation %d (%d files)", root, gen, len(files))
        return gen, files
