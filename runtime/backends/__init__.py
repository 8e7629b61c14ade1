"""Backends that run a bundle's graphs, and ``select_backend`` (``auto`` picks trt > ort-cuda > ort-cpu)."""
from __future__ import annotations

import logging

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.runtime.backends.base import Backend

log = logging.getLogger(__name__)

CHOICES = ("auto", "ort", "ort-cpu", "ort-cuda", "ort-trt", "trt")
AUTO_ORDER = ("trt", "ort-cuda", "ort-cpu")


def _make(kind: str, bundle, threads: int | None, max_batch: int | None, precision: str | None, rebuild: bool,
          opt_batch: int | None = None, tf32: bool | None = None) -> Backend:
    if kind == "trt":
        from fashionsearchnet.runtime.backends.trt import TrtBackend

        return TrtBackend(bundle, precision=precision, max_batch=max_batch, rebuild=rebuild, opt_batch=opt_batch,
                          tf32=tf32)
    from fashionsearchnet.runtime.backends.ort import OrtBackend

    return OrtBackend(bundle.graph_path("backbone"), bundle.graph_path("heads"), kind=kind,
                      precision=bundle.precision, threads=threads, check_io=True)


def select_backend(kind: str, bundle, threads: int | None = None, max_batch: int | None = None,
                   precision: str | None = None, rebuild: bool = True, opt_batch: int | None = None,
                   tf32: bool | None = None) -> Backend:
    """Open the backend ``kind`` for a :class:`~fashionsearchnet.runtime.bundle.Bundle`.

    ``auto`` tries trt, ort-cuda, ort-cpu in that order and logs which it took (and why the others were
    skipped); an explicit kind that cannot be had raises BackendUnavailable. ``ort`` = ``ort-cpu``.
    TensorRT engine configuration (``precision``, ``max_batch``, ``opt_batch``, ``tf32``): each one given wins,
    the rest is what ``fsn engines`` built for the bundle (else bundle precision, 64, 1, TF32 off).
    """
    if kind not in CHOICES:
        raise UsageError(f"--backend {kind!r}: valid: {', '.join(CHOICES)}")
    if kind == "ort":
        kind = "ort-cpu"
    if kind != "auto":
        b = _make(kind, bundle, threads, max_batch, precision, rebuild, opt_batch, tf32)
        log.info("backend %s", b.name)
        return b
    skipped = []
    for k in AUTO_ORDER:
        try:
            b = _make(k, bundle, threads, max_batch, precision, rebuild, opt_batch, tf32)
        except (BackendUnavailable, EngineCacheError) as e:  # a read-only, unusable cache: next backend, logged
            skipped.append(f"{k}: {e}")
            continue
        log.info("backend auto -> %s%s", b.name, (" (skipped " + " | ".join(skipped) + ")") if skipped else "")
        return b
    raise BackendUnavailable("no backend available: " + " | ".join(skipped))
