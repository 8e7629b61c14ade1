"""TensorRT backend (TensorRT 10 and 11) with cuda-python: engines built from the bundle's ONNX graphs with an
optimisation profile on the batch axis, cached per full build configuration (graph, TensorRT version, GPU,
precision, max/opt batch, TF32; ``runtime/engine_cache.py``), buffers allocated once at the profile's max batch, one explicit CUDA stream,
``set_tensor_address`` + ``execute_async_v3``; the backbone's ``conv5`` output buffer *is* the heads' ``conv5``
input buffer, so it never leaves the device. No global CUDA state (no pycuda.autoinit): the device is chosen
with ``cudaSetDevice`` and everything is freed in :meth:`close`.

Engines come from ``fsn engines`` or are built on first use, with the configuration (precision, max/opt
batch, TF32) given to :func:`~fashionsearchnet.runtime.backends.select_backend`, else the one ``fsn engines``
recorded in the cache (:func:`resolve_config`). Host staging buffers are pinned (``cudaMallocHost``).

TensorRT 10 (JetPack 6): ``--fp16`` on an fp32 bundle sets ``BuilderFlag.FP16``. TensorRT 11: strongly typed
networks, no FP16 flag; FP16 must be baked into the ONNX (``fsn export --precision fp16``); asking for FP16
on an fp32 bundle raises BackendUnavailable instead of silently building FP32.
"""
from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.runtime import engine_cache, gpu_env
from fashionsearchnet.runtime.backends.base import HEADS_OUTPUTS, HOST_OUTPUTS, Backend
from fashionsearchnet.fileio import sha256_file
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.whole_numbers import whole_number

log = logging.getLogger(__name__)

GRAPHS = ("backbone", "heads")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MAX_BATCH = 64


def _unavailable(msg: str) -> BackendUnavailable:
    """BackendUnavailable with the driver and CUDA runtime versions appended (what a GPU problem needs first)."""
    return BackendUnavailable(f"{msg} [{gpu_env.describe()}]")


def import_tensorrt():
    """Import tensorrt or raise BackendUnavailable with the fix."""
    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError:
        raise _unavailable(
            "backend trt: the 'tensorrt' package is not installed; install the [gpu-cu12] or [gpu-cu13] extra "
            "matching the driver's CUDA (docs/deployment-gpu.md) on an NVIDIA machine, or use --backend ort-cpu"
        ) from None
    return trt


def import_cudart():
    """cuda-python's runtime bindings (``cuda.bindings.runtime``; ``cuda.cudart`` before cuda-bindings 12.6)."""
    try:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415
    except ImportError:
        try:
            from cuda import cudart  # type: ignore  # noqa: PLC0415
        except ImportError:
            raise _unavailable(
                "backend trt: cuda-python is not installed; install the [gpu-cu12] or [gpu-cu13] extra "
                "(docs/deployment-gpu.md)"
            ) from None
    return cudart


def _check(cudart, result, what: str):
    """Unwrap a cuda-python ``(err, *values)`` tuple; raise BackendUnavailable on any CUDA error."""
    err, *vals = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise _unavailable(f"backend trt: CUDA call {what} failed with {err}; check the GPU and driver")
    return vals[0] if len(vals) == 1 else (tuple(vals) if vals else None)


def gpu_info(device_id: int = 0) -> tuple[tuple[int, int], str]:
    """((major, minor) compute capability, device name) of a GPU; BackendUnavailable if there is none."""
    cudart = import_cudart()
    n = _check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if not n or device_id >= n:
        raise _unavailable(f"backend trt: no CUDA device {device_id} (found {n or 0}); use --backend ort-cpu")
    props = _check(cudart, cudart.cudaGetDeviceProperties(device_id), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return (int(props.major), int(props.minor)), name


def _trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


@dataclass(frozen=True)
class BuildConfig:
    """What an engine pair is built with: precision, optimisation profile (max/opt batch), TF32 for fp32 layers."""

    precision: str
    max_batch: int = DEFAULT_MAX_BATCH
    opt_batch: int = 1
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UsageError(f"engine precision {self.precision!r}: valid: {', '.join(PRECISIONS)}")
        if whole_number(self.max_batch) is None or whole_number(self.opt_batch) is None \
                or not 1 <= self.opt_batch <= self.max_batch:
            raise UsageError(f"--max-batch {self.max_batch} / --opt-batch {self.opt_batch}: need whole numbers "
                             "with 1 <= opt <= max")


def resolve_config(bundle_precision: str, dirs: list[Path], precision: str | None = None,
                   max_batch: int | None = None, opt_batch: int | None = None, tf32: bool | None = None) -> BuildConfig:
    """The configuration to open: each argument given wins; the rest comes from what ``fsn engines`` recorded
    in the cache (``selection.json``), else the bundle's precision, max batch 64, opt batch 1, TF32 off."""
    sel = engine_cache.read_selection(dirs) or {}
    if sel:
        log.info("engines: using the configuration fsn engines built (%s)",
                 ", ".join(f"{k} {v}" for k, v in sel.items()))
    mb = max_batch if max_batch is not None else sel.get("max_batch", DEFAULT_MAX_BATCH)
    ob = opt_batch if opt_batch is not None else sel.get("opt_batch", 1)
    return BuildConfig(precision or sel.get("precision") or bundle_precision, mb, min(ob, mb),
                       bool(tf32) if tf32 is not None else bool(sel.get("tf32", False)))


def engine_key(bundle: Bundle, graph: str, config: BuildConfig, device_id: int = 0):
    """The cache key for one graph on this GPU and TensorRT."""
    trt = import_tensorrt()
    cc, name = gpu_info(device_id)
    sha = bundle.manifest["files"][bundle.manifest["graphs"][graph]["file"]]
    return engine_cache.make_key(sha, trt.__version__, cc, name, config.precision, config.max_batch,
                                 config.opt_batch, tf32=config.tf32)


def build_engine(onnx_path: str | Path, precision: str, bundle_precision: str, max_batch: int, opt_batch: int,
                 tf32: bool = False) -> bytes:
    """Parse an ONNX graph and build a serialized engine with one optimisation profile on the batch axis.

    TF32 (on by default in TensorRT for fp32 layers on Ampere and later) is cleared unless ``tf32``: fp32
    engines then match ONNX Runtime fp32 within the parity tolerance."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")  # RoiAlign etc. go through plugins
    builder = trt.Builder(logger)
    major = _trt_major(trt)
    st = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    # fp16 and int8 (Q/DQ) bundles carry their precision in the ONNX: strongly typed, no precision flags
    # (TensorRT docs, "Explicit Quantization": use it with strong typing, precision build flags not needed)
    strongly_typed = bundle_precision in ("fp16", "int8") or major >= 11
    flags = (1 << int(st)) if (strongly_typed and st is not None and major < 11) else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise _unavailable(f"backend trt: TensorRT {trt.__version__} cannot parse {onnx_path}: {errs}")
    config = builder.create_builder_config()
    if precision == "fp16" and bundle_precision == "int8":
        raise BackendUnavailable(f"backend trt: {onnx_path} is an int8 (Q/DQ) bundle, its precision is in the ONNX; "
                                 "build it without --fp16")
    if precision == "fp16" and bundle_precision != "fp16":
        flag = getattr(trt.BuilderFlag, "FP16", None)
        if flag is None or major >= 11:
            raise BackendUnavailable(
                f"backend trt: TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks); "
                "export the bundle with --precision fp16 instead"
            )
        config.set_flag(flag)
    tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
    if tf32_flag is not None:
        (config.set_flag if tf32 else config.clear_flag)(tf32_flag)
    elif tf32:
        raise BackendUnavailable(f"backend trt: TensorRT {trt.__version__} has no TF32 builder flag; build without --tf32")
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        rest = tuple(int(d) for d in t.shape[1:])
        if any(d < 0 for d in rest):
            raise BackendUnavailable(f"backend trt: {onnx_path} input {t.name} has dynamic non-batch axes {t.shape}")
        profile.set_shape(t.name, (1,) + rest, (opt_batch,) + rest, (max_batch,) + rest)
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise _unavailable(f"backend trt: TensorRT {trt.__version__} failed to build an engine from {onnx_path}")
    return bytes(blob)


def ensure_engines(bundle: Bundle, config: BuildConfig, dirs: list[Path], rebuild: bool = True, device_id: int = 0,
                   builder: Callable[..., bytes] = build_engine) -> dict[str, tuple[Path, str]]:
    """``{graph: (engine path, "use" | "build" | "rebuild")}`` for both graphs: valid cached engines are used,
    missing ones built, stale ones rebuilt (logged, named) or refused with ``rebuild=False``. ``dirs`` from
    :func:`engine_cache.cache_dirs`."""
    out = {}
    for g in GRAPHS:
        key = engine_key(bundle, g, config, device_id)
        out[g] = engine_cache.ensure_engine(
            dirs, g, key,
            lambda g=g: builder(bundle.graph_path(g), config.precision, bundle.precision, config.max_batch,
                                config.opt_batch, config.tf32),
            sha256_file, rebuild=rebuild, bundle_path=bundle.path)
    return out


class TrtBackend(Backend):
    """Both engines, one stream, device buffers and pinned (page-locked) host staging buffers allocated once at
    the profile's max batch. A failing ``__init__`` frees whatever it had allocated before raising."""

    name = "trt"

    def __init__(self, bundle: Bundle, precision: str | None = None, max_batch: int | None = None,
                 cache_dir: str | Path | None = None, rebuild: bool = True, device_id: int = 0,
                 opt_batch: int | None = None, tf32: bool | None = None):
        self._cudart = None
        self._dev: dict[tuple[str, str], Any] = {}
        self._host: dict[tuple[str, str], np.ndarray] = {}
        self._pinned: list[Any] = []
        self._stream = None
        self._engines, self._contexts, self._specs = {}, {}, {}
        self._batch = 0
        try:
            self._open(bundle, precision, max_batch, cache_dir, rebuild, device_id, opt_batch, tf32)
        except BaseException:
            self.close()
            raise

    def _open(self, bundle, precision, max_batch, cache_dir, rebuild, device_id, opt_batch, tf32) -> None:
        self._trt = trt = import_tensorrt()
        self._cudart = cudart = import_cudart()
        self.device_id = int(device_id)
        _check(cudart, cudart.cudaSetDevice(self.device_id), "cudaSetDevice")
        dirs = engine_cache.cache_dirs(bundle.path, cache_dir)
        self.config = resolve_config(bundle.precision, dirs, precision, max_batch, opt_batch, tf32)
        self.max_batch = self.config.max_batch
        paths = ensure_engines(bundle, self.config, dirs, rebuild, self.device_id)
        self._logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self._logger, "")
        self._runtime = trt.Runtime(self._logger)
        self._stream = _check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        for g in GRAPHS:
            path = paths[g][0]
            eng = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if eng is None:
                raise EngineCacheError(
                    f"{path}: TensorRT {trt.__version__} could not deserialize it (corrupt, or built by another "
                    f"TensorRT/GPU under the same name); delete it and rerun: "
                    f"{engine_cache.rebuild_command(bundle.path, engine_key(bundle, g, self.config, self.device_id))}")
            self._engines[g] = eng
            self._contexts[g] = eng.create_execution_context()
            self._specs[g] = self._tensor_specs(eng)
        self._allocate()

    def _tensor_specs(self, eng) -> dict[str, dict[str, Any]]:
        trt = self._trt
        specs = {}
        for i in range(eng.num_io_tensors):
            n = eng.get_tensor_name(i)
            specs[n] = {"input": eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT,
                        "dtype": np.dtype(trt.nptype(eng.get_tensor_dtype(n))),
                        "shape": tuple(int(d) for d in eng.get_tensor_shape(n))}
        return specs

    def _pinned_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A numpy view of page-locked host memory (``cudaMallocHost``): asynchronous copies really overlap."""
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        ptr = _check(self._cudart, self._cudart.cudaMallocHost(nbytes), "cudaMallocHost")
        self._pinned.append(ptr)
        raw = (ctypes.c_byte * nbytes).from_address(int(ptr))
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def _allocate(self) -> None:
        """Device buffers for every tensor at max batch (conv5 shared by both engines) and a pinned host staging
        buffer for every tensor, the heads' conv5 included (for ``run("heads", {"conv5": ...})``)."""
        cudart = self._cudart
        for g in GRAPHS:
            ctx = self._contexts[g]
            for n, s in self._specs[g].items():
                if s["input"]:
                    ctx.set_input_shape(n, (self.max_batch,) + s["shape"][1:])
            for n, s in self._specs[g].items():
                shape = tuple(int(d) for d in ctx.get_tensor_shape(n))
                s["max_shape"] = shape
                if g == "heads" and n == "conv5":
                    ptr = self._dev[("backbone", "conv5")]
                else:
                    nbytes = int(np.prod(shape)) * s["dtype"].itemsize
                    ptr = _check(cudart, cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
                self._dev[(g, n)] = ptr
                self._host[(g, n)] = self._pinned_array(shape, s["dtype"])
                ctx.set_tensor_address(n, int(ptr))

    def _h2d(self, g: str, n: str, arr: np.ndarray) -> None:
        cudart = self._cudart
        buf = self._host[(g, n)]
        flat = buf.reshape(-1)[: arr.size]
        flat[:] = arr.astype(buf.dtype, copy=False).reshape(-1)
        _check(cudart, cudart.cudaMemcpyAsync(self._dev[(g, n)], buf.ctypes.data, arr.size * buf.itemsize,
                                              cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream), "cudaMemcpyAsync")

    def _d2h(self, g: str, n: str, batch: int) -> np.ndarray:
        cudart = self._cudart
        ctx = self._contexts[g]
        shape = tuple(int(d) for d in ctx.get_tensor_shape(n))
        buf = self._host[(g, n)]
        size = int(np.prod(shape))
        _check(cudart, cudart.cudaMemcpyAsync(buf.ctypes.data, self._dev[(g, n)], size * buf.itemsize,
                                              cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream), "cudaMemcpyAsync")
        return buf.reshape(-1)[:size].reshape(shape)

    def _execute(self, g: str, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        ctx = self._contexts[g]
        batch = next(iter(inputs.values())).shape[0] if inputs else self._batch
        if batch > self.max_batch:
            raise UsageError(f"batch {batch} exceeds the engines' max batch {self.max_batch}; use a smaller batch_size "
                             f"or rebuild: fsn engines BUNDLE --max-batch {batch}")
        for n, s in self._specs[g].items():
            if s["input"]:
                ctx.set_input_shape(n, (batch,) + s["shape"][1:])
        for n, arr in inputs.items():
            if (g, n) not in self._host:
                raise UsageError(f"graph {g}: no input {n!r}; inputs: "
                                 + ", ".join(k for k, s in self._specs[g].items() if s["input"]))
            self._h2d(g, n, arr)
        if not ctx.execute_async_v3(self._stream):
            raise BackendUnavailable(f"backend trt: execute_async_v3 failed for the {g} engine")
        res = {n: self._d2h(g, n, batch) for n in outputs}
        _check(self._cudart, self._cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return {n: a.copy() for n, a in res.items()}

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if graph not in GRAPHS:
            raise UsageError(f"graph {graph!r}: valid: backbone, heads")
        outs = tuple(n for n, s in self._specs[graph].items() if not s["input"])
        if graph == "heads" and "conv5" in inputs:
            self._batch = inputs["conv5"].shape[0]
        return self._execute(graph, inputs, outs)

    def backbone(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._batch = images.shape[0]
        return self._execute("backbone", {"images": images}, HOST_OUTPUTS)

    def heads(self, boxes: np.ndarray) -> dict[str, np.ndarray]:
        if boxes.shape[0] != self._batch or self._batch == 0:
            raise UsageError(f"boxes: batch {boxes.shape[0]} but the last backbone() batch was {self._batch}")
        ctx = self._contexts["heads"]
        ctx.set_input_shape("conv5", (self._batch,) + self._specs["heads"]["conv5"]["shape"][1:])
        return self._execute("heads", {"boxes": boxes}, HEADS_OUTPUTS)  # conv5 already on the device

    def close(self) -> None:
        """Free device memory, pinned host memory and the stream (safe to call twice, and after a failed init)."""
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        self._contexts, self._engines = {}, {}  # contexts before the memory they point at
        freed = set()
        for ptr in getattr(self, "_dev", {}).values():
            if int(ptr) not in freed:
                cudart.cudaFree(ptr)
                freed.add(int(ptr))
        self._dev = {}
        self._host = {}
        for ptr in getattr(self, "_pinned", []):
            cudart.cudaFreeHost(ptr)
        self._pinned = []
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
