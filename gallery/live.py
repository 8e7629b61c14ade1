"""A gallery that follows its folder: when ``fsn update`` (or ``fsn index --force``) publishes a new generation,
the next look after it loads that generation in the background and swaps it in atomically.

Requests already running keep the Gallery object they started with (every array and index is in memory, so the
writer removing the old generation folder does not disturb them); requests after the swap see the new one. A
new generation that cannot be loaded (damaged, another bundle) is logged in one line and the current one stays
in service; the next change of the pointer is tried again.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fashionsearchnet.errors import GalleryError, one_line
from fashionsearchnet.gallery import store
from fashionsearchnet.gallery.gallery import Gallery

log = logging.getLogger(__name__)


def pointer_stamp(root: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of the CURRENT pointer: it changes whenever a writer publishes (rename over it)."""
    try:
        st = os.stat(Path(root) / store.POINTER)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class LiveGallery:
    """Holds the served Gallery; :meth:`current` returns it, starting a background reload when the pointer
    changed (looked at most every ``poll_s`` seconds). ``check(gallery)`` may refuse a new generation (e.g. one
    built with another bundle) by raising an FSNError; ``prepare(gallery)`` warms it up before the swap;
    ``on_swap(old, new)`` runs after it."""

    def __init__(self, root: str | Path, poll_s: float = 1.0, check: Callable[[Gallery], None] | None = None,
                 prepare: Callable[[Gallery], None] | None = None,
                 on_swap: Callable[[Gallery, Gallery], None] | None = None):
        self.root, self.poll_s = Path(root), poll_s
        self._check, self._prepare, self._on_swap = check, prepare, on_swap
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._next_look = 0.0
        self._loading: threading.Thread | None = None
        self.reload_error: str | None = None

    def open(self) -> Gallery:
        """Load the published generation now (blocking; the service's start-up)."""
        stamp = pointer_stamp(self.root)
        g = Gallery.open(self.root)
        if self._check:
            self._check(g)
        with self._lock:
            self._gallery, self._stamp = g, stamp
        return g

    def current(self) -> Gallery:
        """The gallery to use for one request (never blocks on a reload)."""
        g = self._gallery
        if g is None:
            raise GalleryError(f"{self.root}: not loaded yet; call open() first")
        now = time.monotonic()
        if now >= self._next_look:
            with self._lock:
                if now >= self._next_look:
                    self._next_look = now + self.poll_s
                    stamp = pointer_stamp(self.root)
                    if stamp is not None and stamp != self._stamp and self._loading is None:
                        self._loading = threading.Thread(target=self._reload, args=(stamp,), name="fsn-reload",
                                                         daemon=True)
                        self._loading.start()
        return self._gallery

    def wait_reload(self, timeout: float | None = None) -> None:
        """Wait for a reload in progress (tests, shutdown)."""
        t = self._loading
        if t is not None:
            t.join(timeout)

    def _reload(self, stamp: tuple[int, int, int]) -> None:
        try:
            t0 = time.perf_counter()
            new = Gallery.open(self.root)
            if self._check:
                self._check(new)
            if self._prepare:
                self._prepare(new)
        except Exception as e:  # keep serving the current generation; one line in the log
            self.reload_error = one_line(f"generation not loaded, still serving {self._gallery.generation}: {e}")
            log.error("%s: %s", self.root, self.reload_error, exc_info=not isinstance(e, GalleryError))
            with self._lock:
                self._stamp, self._loading = stamp, None  # tried; the next publish is tried again
            return
        with self._lock:
            old, self._gallery, self._stamp, self._loading = self._gallery, new, stamp, None
            self.reload_error = None
        if self._on_swap and old is not None:
            self._on_swap(old, new)
        log.info("%s: now serving generation %s (%d items; was %s), loaded in %.2f s", self.root, new.generation,
                 len(new), old.generation if old is not None else None, time.perf_counter() - t0)
