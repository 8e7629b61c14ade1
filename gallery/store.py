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
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

from fashionsearchnet.errors import GalleryError
from fashionsearchnet.fileio import fsync_dir, sha256_file, verify_checksums

log = logging.getLogger(__name__)

POINTER = "CURRENT"
MANIFEST = "gallery.json"
LOCK = ".lock"


def write_file(path: Path, writer: Callable[[Any], None]) -> None:
    """Write ``path`` with ``writer(fileobj)`` and fsync it."""
    with open(path, "wb") as f:
        writer(f)
        f.flush()
        os.fsync(f.fileno())


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
        int(ptr["generation"]), str(ptr["dir"]), str(ptr["manifest_sha256"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise GalleryError(f"{p}: unreadable generation pointer; restore the gallery from a backup or re-index it") from None
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
    manifest = json.loads(raw.decode("utf-8"))
    verify_checksums(gdir, manifest.get("files", {}), GalleryError, MANIFEST, "from the gallery",
                     "the gallery was damaged, re-index it")
    return manifest, gdir, int(ptr["generation"])


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
