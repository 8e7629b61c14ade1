"""OpenVINO backend: the bundle's ONNX graphs read by OpenVINO's own Python API (no conversion step) and compiled
for an OpenVINO device, ``CPU`` (default), ``GPU`` (Intel integrated/discrete), ``NPU`` (Core Ultra) or ``AUTO``.

Inference precision is explicit: ``fp32`` (the default; set as OpenVINO's INFERENCE_PRECISION_HINT because the
CPU plugin would otherwise pick bf16 by itself on AMX processors), ``bf16`` or ``fp16`` only where the device
lists it in OPTIMIZATION_CAPABILITIES, else BackendUnavailable (never a silent fallback). int8 (QDQ) bundles run
as they are (OpenVINO turns Q/DQ pairs into int8 kernels); the float parts run at the chosen precision.

Compiled models are cached with OpenVINO's model cache (CACHE_DIR) in ``BUNDLE/openvino/<version>/<DEVICE>``,
or where the bundle cannot be written (a read-only kiosk image) in
``$XDG_CACHE_HOME/fashionsearchnet/openvino/<bundle sha256[:16]>/<version>/<DEVICE>``. OpenVINO keys each blob by
the model, the device and the compile options; the folder adds the version and device so that upgrading or
changing devices never reads an old blob. ``fsn-cache.json`` beside the blobs records each blob's sha256: a blob
that no longer matches is named in a warning, removed and rebuilt (or, in a folder that cannot be written, a
one-line EngineCacheError naming it and the fix).

NPUs compile static shapes only: there both graphs are compiled per batch size on first use (each cached). On
the CPU the heads graph is compiled that way too: its crop (GridSample on the boxes) measured 0.40 vs 0.65 ms
(p10) and 3.0 vs 9.1 ms (median, loaded machine) at batch 1 static vs dynamic; the backbone stays dynamic.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.fileio import atomic_write_text, sha256_file
from fashionsearchnet.runtime.backends.base import BACKBONE_OUTPUTS, HEADS_OUTPUTS, HOST_OUTPUTS, Backend, check_boxes

log = logging.getLogger(__name__)

DEVICES = ("CPU", "GPU", "NPU", "AUTO")
PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # ours -> INFERENCE_PRECISION_HINT
CAPABILITY = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16"}  # ours -> OPTIMIZATION_CAPABILITIES entry
STATIC_SHAPE_DEVICES = ("NPU",)
STATIC_HEADS_DEVICES = ("NPU", "CPU")
DEFAULT_THREADS = 1  # as the ONNX Runtime backend: one intra-op thread unless --threads says otherwise
CACHE_FOLDER = "openvino"
CACHE_RECORD = "fsn-cache.json"
INSTALL_HINT = "install the [openvino] extra: pip install 'fashionsearchnet-edge[openvino]'"


def normalize_device(device: str | None) -> str:
    """``--device`` for OpenVINO: CPU, GPU, GPU.<n>, NPU or AUTO (any case); None -> CPU."""
    if device is None:
        return "CPU"
    d = str(device).strip().upper()
    if not re.fullmatch(r"(CPU|GPU(\.\d+)?|NPU|AUTO)", d):
        raise UsageError(f"--device {device!r}: the openvino backend takes CPU, GPU, GPU.<n>, NPU or AUTO")
    return d


def is_openvino_device(device: str | None) -> bool:
    """Whether ``device`` names an OpenVINO device other than the CPU (GPU, NPU, AUTO): other backends refuse it."""
    return device is not None and bool(re.fullmatch(r"(GPU(\.\d+)?|NPU|AUTO)", str(device).strip().upper()))


def import_openvino():
    """The openvino module, or BackendUnavailable naming the extra to install."""
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailable(
            f"backend openvino: the openvino package is not installed ({e}); {INSTALL_HINT}") from None
    return openvino


def device_present(device: str, available: list[str]) -> bool:
    """Whether OpenVINO's ``available_devices`` has ``device`` (``GPU`` matches ``GPU.0``; AUTO always)."""
    if device == "AUTO":
        return bool(available)
    return device in available or ("." not in device and any(a.split(".")[0] == device for a in available))


def check_precision(precision: str, device: str, capabilities: list[str]) -> None:
    """Refuse a precision the device cannot run (one line naming the device, what it has and the fix)."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: the openvino backend takes {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if device == "AUTO":
        raise BackendUnavailable(f"--precision {precision} with --device AUTO: AUTO may choose a device without "
                                 f"{precision}; name the device (--device CPU|GPU|NPU)")
    if CAPABILITY[precision] not in capabilities:
        raise BackendUnavailable(
            f"--precision {precision}: OpenVINO device {device} does not support it (OPTIMIZATION_CAPABILITIES: "
            f"{', '.join(capabilities) or 'none'}); use --precision fp32"
            + (" (bf16 needs AVX512_BF16 or AMX: Xeon 4th gen+)" if precision == "bf16" and device == "CPU" else "")
        )


def _writable_dir(path: Path) -> bool:
    """Create ``path`` (parents too) and check that a file can be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/fashionsearchnet/openvino`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fashionsearchnet" / CACHE_FOLDER


def cache_dir(bundle_path: Path, bundle_sha256: str, version: str, device: str, writable=None) -> Path | None:
    """The compiled-model cache folder for this OpenVINO version and device: in the bundle if it can be
    written, else in the user cache folder; None (no cache, logged) when neither can."""
    writable = writable or _writable_dir
    short = version.split("-")[0]
    sub = Path(short) / device
    first = Path(bundle_path) / CACHE_FOLDER / sub
    if writable(first):
        return first
    second = user_cache_root() / bundle_sha256[:16] / sub
    if writable(second):
        log.info("openvino: %s cannot be written (read-only bundle?); caching compiled models in %s", first, second)
        return second
    log.warning("openvino: neither %s nor %s can be written; compiling without a model cache (slower start)",
                first, second)
    return None


def _record_path(folder: Path) -> Path:
    return folder / CACHE_RECORD


def _remove(path: Path) -> None:
    path.unlink()


def verify_cache(folder: Path) -> None:
    """Check every blob recorded in ``fsn-cache.json`` against its sha256; remove (and log) a corrupt one so that
    OpenVINO rebuilds it, or raise EngineCacheError when it cannot be removed."""
    rec = _record_path(folder)
    if not rec.is_file():
        return
    try:
        recorded = json.loads(rec.read_text(encoding="utf-8")).get("blobs", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        log.warning("openvino cache: %s is unreadable; rewriting it after this compile", rec)
        return
    for name, digest in recorded.items():
        blob = folder / name
        if not blob.is_file() or sha256_file(blob) == digest:
            continue
        try:
            _remove(blob)
        except OSError as e:
            raise EngineCacheError(
                f"{blob}: corrupt cached OpenVINO model (sha256 differs from {rec.name}) and it cannot be removed "
                f"({e.strerror}); delete the folder {folder} and start again"
            ) from None
        log.warning("openvino cache: %s is corrupt (sha256 differs from %s); removed, rebuilding it", blob, rec.name)


def record_cache(folder: Path) -> None:
    """Write the sha256 of every blob in ``folder`` into ``fsn-cache.json`` (atomically)."""
    blobs = {p.name: sha256_file(p) for p in sorted(folder.glob("*.blob"))}
    try:
        atomic_write_text(_record_path(folder), json.dumps({"blobs": blobs}, indent=1))
    except OSError as e:
        log.warning("openvino cache: cannot write %s (%s); corrupt blobs there will not be detected", folder, e)


class OpenVinoBackend(Backend):
    """Two OpenVINO compiled models (backbone, heads); ``conv5`` passes between them as an OpenVINO tensor."""

    def __init__(self, bundle, device: str | None = None, precision: str | None = None, threads: int | None = None,
                 cache: bool = True, static_shapes: bool | None = None):
        ov = import_openvino()
        self.device = normalize_device(device)
        self.precision = precision or "fp32"
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise UsageError(f"--threads {threads!r}: give 0 (OpenVINO's default, every core) or a positive count")
        core = ov.Core()
        have = list(core.available_devices)
        if not device_present(self.device, have):
            raise BackendUnavailable(
                f"backend openvino: no {self.device} device here (OpenVINO {ov.get_version()} sees: "
                f"{', '.join(have) or 'none'}); install its driver (GPU: Intel compute runtime, NPU: Intel NPU "
                "driver) or use --device CPU"
            )
        caps = [] if self.device == "AUTO" else list(core.get_property(self.device, "OPTIMIZATION_CAPABILITIES"))
        check_precision(self.precision, self.device, caps)
        self.version = ov.get_version()
        self.bundle_precision = bundle.precision
        kind = self.device.split(".")[0]
        self.static = ({"backbone": kind in STATIC_SHAPE_DEVICES, "heads": kind in STATIC_HEADS_DEVICES}
                       if static_shapes is None else {"backbone": static_shapes, "heads": static_shapes})
        self.config: dict[str, object] = {"INFERENCE_PRECISION_HINT": PRECISIONS[self.precision],
                                          "PERFORMANCE_HINT": "LATENCY"}
        if self.device == "CPU":
            self.config["INFERENCE_NUM_THREADS"] = DEFAULT_THREADS if threads is None else int(threads)
        self.cache = cache_dir(bundle.path, bundle.sha256, self.version, self.device) if cache else None
        if self.cache is not None:
            verify_cache(self.cache)
            self.config["CACHE_DIR"] = str(self.cache)
        self._ov, self._core = ov, core
        self._paths = {g: bundle.graph_path(g) for g in ("backbone", "heads")}
        self._compiled: dict[tuple[str, int], object] = {}
        self._requests: dict[tuple[str, int], object] = {}
        for g in self._paths:
            self._request(g, 1)  # compile both now: errors (and the cache) at start-up, not on the first photo
        if self.cache is not None:
            record_cache(self.cache)
        self.name = "openvino-" + self.device.lower()
        self._conv5 = None
        self._batch = 0
        log.info("openvino %s: %s, precision %s (bundle %s), cache %s", self.version.split("-")[0], self.device,
                 self.precision, self.bundle_precision, self.cache or "off")

    def _request(self, graph: str, batch: int):
        """The infer request of ``graph`` (per batch size on static-shape devices), compiled on first use."""
        static = self.static[graph]
        key = (graph, batch if static else 0)
        req = self._requests.get(key)
        if req is not None:
            return req
        path = self._paths[graph]
        try:
            if static:
                model = self._core.read_model(str(path))
                model.reshape({i.get_any_name(): [batch, *list(i.get_partial_shape())[1:]] for i in model.inputs})
                compiled = self._core.compile_model(model, self.device, self.config)
            else:
                compiled = self._core.compile_model(str(path), self.device, self.config)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendUnavailable(f"backend openvino: {path} does not compile for {self.device} at "
                                     f"{self.precision} ({first}); try --device CPU or --precision fp32") from None
        if static and self.cache is not None and batch != 1:
            record_cache(self.cache)
        self._compiled[key] = compiled
        self._requests[key] = req = compiled.create_infer_request()
        return req

    def _infer(self, graph: str, inputs: dict[str, np.ndarray], batch: int):
        req = self._request(graph, batch)
        req.infer({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()})
        return req

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if graph not in self._paths:
            raise UsageError(f"graph {graph!r}: valid: backbone, heads")
        batch = int(next(iter(inputs.values())).shape[0])
        req = self._infer(graph, inputs, batch)
        names = BACKBONE_OUTPUTS if graph == "backbone" else HEADS_OUTPUTS
        return {n: np.array(req.get_tensor(n).data, copy=True) for n in names}

    def backbone(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.ascontiguousarray(images, dtype=np.float32)
        req = self._infer("backbone", {"images": images}, images.shape[0])
        self._conv5, self._batch = req.get_tensor("conv5"), images.shape[0]
        return {n: np.array(req.get_tensor(n).data, copy=True) for n in HOST_OUTPUTS}

    def heads(self, boxes: np.ndarray) -> dict[str, np.ndarray]:
        boxes = check_boxes(boxes, None if self._conv5 is None else self._batch)
        req = self._request("heads", self._batch)
        req.set_tensor("conv5", self._conv5)  # the backbone's output tensor itself: no host copy
        req.set_tensor("boxes", self._ov.Tensor(boxes))
        req.infer()
        return {n: np.array(req.get_tensor(n).data, copy=True) for n in HEADS_OUTPUTS}

    def close(self) -> None:
        self._conv5 = None
        self._requests, self._compiled = {}, {}


def cpu_vendor_name(core) -> str:
    """The CPU's name as OpenVINO reports it (``FULL_DEVICE_NAME``), e.g. ``Intel(R) Xeon(R) ...``."""
    try:
        return str(core.get_property("CPU", "FULL_DEVICE_NAME"))
    except RuntimeError:
        return "?"


def auto_skip_reason(bundle, device: str | None, precision: str | None) -> str | None:
    """Why ``--backend auto`` should not take openvino here (None: take it).

    Taken when openvino is installed, the device is Intel (an Intel CPU; OpenVINO's GPU and NPU devices are
    Intel's) and it gains something over ort-cpu: bf16/fp16 asked, an int8 bundle (the issue's measurement:
    0.82 vs 1.64 ms at batch 1), or a GPU/NPU/AUTO device asked. fp32 on the CPU stays with ort-cpu: OpenVINO
    fp32 measured no faster there (issue 23: 1.86 vs 1.76-1.91 ms; benchmarks/perf/results/openvino_bench.md).
    """
    try:
        ov = import_openvino()
    except BackendUnavailable as e:
        return str(e)
    if device is not None and not re.fullmatch(r"(CPU|GPU(\.\d+)?|NPU|AUTO)", str(device).strip().upper()):
        return f"openvino: --device {device} is not an OpenVINO device (CPU, GPU, NPU, AUTO)"
    d = normalize_device(device)
    if d == "CPU":
        name = cpu_vendor_name(ov.Core())
        if "intel" not in name.lower():
            return f"openvino: the CPU is {name.strip()}, not Intel (use --backend openvino to run it anyway)"
        if (precision or "fp32") == "fp32" and bundle.precision != "int8":
            return ("openvino: fp32 on the CPU measured no faster than ort-cpu; auto takes openvino on Intel CPUs "
                    "for int8 bundles or --precision bf16")
    return None
