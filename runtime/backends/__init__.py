"""Backends that run a bundle's graphs, and ``select_backend`` (``auto`` picks trt > ort-cuda > openvino > ort-cpu;
openvino only on Intel devices, see :func:`fashionsearchnet.runtime.backends.openvino.auto_skip_reason`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.runtime.backends.base import Backend

log = logging.getLogger(__name__)

CHOICES = ("auto", "ort", "ort-cpu", "ort-cuda", "ort-trt", "trt", "openvino")
AUTO_ORDER = ("trt", "ort-cuda", "openvino", "ort-cpu")


@dataclass(frozen=True)
class BackendChoice:
    """A backend kind with its device and precision (``--backend openvino --device GPU --precision bf16``); passes
    unchanged wherever a backend kind string does (FeatureExtractor, index_catalogue, evaluate_bundle)."""

    kind: str = "auto"
    device: str | None = None  # OpenVINO device name (CPU, GPU, NPU, AUTO); None = CPU
    precision: str | None = None  # None = the bundle's own

    def __str__(self) -> str:
        return self.kind


def _make(kind: str, bundle, threads: int | None, max_batch: int | None, precision: str | None, rebuild: bool,
          opt_batch: int | None = None, tf32: bool | None = None, device: str | None = None) -> Backend:
    if kind == "openvino":
        from fashionsearchnet.runtime.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(bundle, device=device, precision=precision, threads=threads)
    from fashionsearchnet.runtime.backends.openvino import is_openvino_device

    if is_openvino_device(device):
        raise BackendUnavailable(f"backend {kind}: --device {device} is an OpenVINO device; use --backend openvino")
    if precision == "bf16":
        raise BackendUnavailable(f"backend {kind}: --precision bf16 runs on --backend openvino only")
    if kind == "trt":
        from fashionsearchnet.runtime.backends.trt import TrtBackend

        return TrtBackend(bundle, precision=precision, max_batch=max_batch, rebuild=rebuild, opt_batch=opt_batch,
                          tf32=tf32)
    from fashionsearchnet.runtime.backends.ort import OrtBackend

    return OrtBackend(bundle.graph_path("backbone"), bundle.graph_path("heads"), kind=kind,
                      precision=bundle.precision, threads=threads, check_io=True)


def select_backend(kind: str | BackendChoice, bundle, threads: int | None = None, max_batch: int | None = None,
                   precision: str | None = None, rebuild: bool = True, opt_batch: int | None = None,
                   tf32: bool | None = None, device: str | None = None) -> Backend:
    """Open the backend ``kind`` for a :class:`~fashionsearchnet.runtime.bundle.Bundle`.

    ``auto`` tries trt, ort-cuda, openvino, ort-cpu in that order and logs which it took (and why the others were
    skipped); an explicit kind that cannot be had raises BackendUnavailable. ``ort`` = ``ort-cpu``.
    TensorRT engine configuration (``precision``, ``max_batch``, ``opt_batch``, ``tf32``): each one given wins,
    the rest is what ``fsn engines`` built for the bundle (else bundle precision, 64, 1, TF32 off).
    ``device`` is an OpenVINO device name (the other backends refuse GPU/NPU/AUTO); ``kind`` may be a
    :class:`BackendChoice` (kind, device, precision).
    """
    if isinstance(kind, BackendChoice):
        kind, device, precision = kind.kind, kind.device or device, kind.precision or precision
    if kind not in CHOICES:
        raise UsageError(f"--backend {kind!r}: valid: {', '.join(CHOICES)}")
    if kind == "ort":
        kind = "ort-cpu"
    if kind != "auto":
        b = _make(kind, bundle, threads, max_batch, precision, rebuild, opt_batch, tf32, device)
        log.info("backend %s", b.name)
        return b
    skipped = []
    for k in AUTO_ORDER:
        try:
            if k == "openvino":
                from fashionsearchnet.runtime.backends.openvino import auto_skip_reason

                why = auto_skip_reason(bundle, device, precision)
                if why:
                    raise BackendUnavailable(why)
            b = _make(k, bundle, threads, max_batch, precision, rebuild, opt_batch, tf32, device)
        except (BackendUnavailable, EngineCacheError) as e:  # a read-only, unusable cache: next backend, logged
            skipped.append(f"{k}: {e}")
            continue
        log.info("backend auto -> %s%s", b.name, (" (skipped " + " | ".join(skipped) + ")") if skipped else "")
        return b
    raise BackendUnavailable("no backend available: " + " | ".join(skipped))
