"""TensorRT backend (TensorRT 10 and 11) with cuda-python: engines built from the bundle's ONNX graphs with an
optimisation profile on the batch axis, cached per GPU compute capability + TensorRT version
(``runtime/engine_cache.py``), buffers allocated once at the profile's max batch, one explicit CUDA stream,
``set_tensor_address`` + ``execute_async_v3``; the backbone's ``conv5`` output buffer *is* the heads' ``conv5``
input buffer, so it never leaves the device. No global CUDA state (no pycuda.autoinit): the device is chosen
with ``cudaSetDevice`` and everything is freed in :meth:`close`.

TensorRT 10 (JetPack 6): ``--fp16`` on an fp32 bundle sets ``BuilderFlag.FP16``. TensorRT 11: strongly typed
networks, no FP16 flag; FP16 must be baked into the ONNX (``fsn export --precision fp16``); asking for FP16
on an fp32 bundle raises BackendUnavailable instead of silently building FP32.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.runtime import engine_cache
from fashionsearchnet.runtime.backends.base import HEADS_OUTPUTS, HOST_OUTPUTS, Backend
from fashionsearchnet.fileio import sha256_file
from fashionsearchnet.runtime.bundle import Bundle

log = logging.getLogger(__name__)

GRAPHS = ("backbone", "heads")


def import_tensorrt():
    """Import tensorrt or raise BackendUnavailable with the fix."""
    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError:
        raise BackendUnavailable(
            "backend trt: the 'tensorrt' package is not installed; install the [gpu] extra on an NVIDIA machine "
            "(or use --backend ort)"
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
            raise BackendUnavailable(
                "backend trt: cuda-python is not installed; pip install 'cuda-python>=12' (the [gpu] extra)"
            ) from None
    return cudart


def _check(cudart, result, what: str):
    """Unwrap a cuda-python ``(err, *values)`` tuple; raise BackendUnavailable on any CUDA error."""
    err, *vals = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendUnavailable(f"backend trt: CUDA call {what} failed with {err}; check the GPU and driver")
    return vals[0] if len(vals) == 1 else (tuple(vals) if vals else None)


def gpu_info(device_id: int = 0) -> tuple[tuple[int, int], str]:
    """((major, minor) compute capability, device name) of a GPU; BackendUnavailable if there is none."""
    cudart = import_cudart()
    n = _check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if not n or device_id >= n:
        raise BackendUnavailable(f"backend trt: no CUDA device {device_id} (found {n or 0}); use --backend ort-cpu")
    props = _check(cudart, cudart.cudaGetDeviceProperties(device_id), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return (int(props.major), int(props.minor)), name


def _trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def engine_key(bundle: Bundle, graph: str, precision: str, max_batch: int, opt_batch: int, device_id: int = 0):
    """The cache key for one graph on this GPU and TensorRT."""
    trt = import_tensorrt()
    cc, name = gpu_info(device_id)
    sha = bundle.manifest["files"][bundle.manifest["graphs"][graph]["file"]]
    return engine_cache.make_key(sha, trt.__version__, cc, name, precision, max_batch, opt_batch)


def build_engine(onnx_path: str | Path, precision: str, bundle_precision: str, max_batch: int, opt_batch: int) -> bytes:
    """Parse an ONNX graph and build a serialized engine with one optimisation profile on the batch axis."""
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
        raise BackendUnavailable(f"backend trt: TensorRT {trt.__version__} cannot parse {onnx_path}: {errs}")
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
        raise BackendUnavailable(f"backend trt: TensorRT {trt.__version__} failed to build an engine from {onnx_path}")
    return bytes(blob)


def ensure_engines(bundle: Bundle, precision: str | None = None, max_batch: int = 64, opt_batch: int = 1,
                   cache_dir: str | Path | None = None, rebuild: bool = True, device_id: int = 0) -> dict[str, Path]:
    """Return valid engine paths for both graphs, building missing ones and rebuilding (or refusing) stale ones."""
    precision = precision or bundle.precision
    cache = Path(cache_dir) if cache_dir else bundle.path / engine_cache.CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for g in GRAPHS:
        key = engine_key(bundle, g, precision, max_batch, opt_batch, device_id)
        state, path = engine_cache.lookup(cache, g, key, sha256_file)
        if state == "stale" and not rebuild:
            raise engine_cache.stale_error(cache, g, key, bundle.path)
        if state != "use":
            log.info("building TensorRT engine for %s (%s, max batch %d, %s)", g, precision, max_batch,
                     "stale engine replaced" if state == "stale" else "none cached")
            blob = build_engine(bundle.graph_path(g), precision, bundle.precision, max_batch, opt_batch)
            tmp = path.with_suffix(".engine.tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)
            engine_cache.write_sidecar(cache, g, key, sha256_file(path))
        out[g] = path
    return out


class TrtBackend(Backend):
    """Both engines, one stream, buffers allocated once at ``max_batch``."""

    name = "trt"

    def __init__(self, bundle: Bundle, precision: str | None = None, max_batch: int = 64,
                 cache_dir: str | Path | None = None, rebuild: bool = True, device_id: int = 0):
        self._trt = trt = import_tensorrt()
        self._cudart = cudart = import_cudart()
        self.device_id = int(device_id)
        _check(cudart, cudart.cudaSetDevice(self.device_id), "cudaSetDevice")
        self.max_batch = int(max_batch)
        paths = ensure_engines(bundle, precision, max_batch, 1, cache_dir, rebuild, device_id)
        self._logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self._logger, "")
        self._runtime = trt.Runtime(self._logger)
        self._stream = _check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._engines, self._contexts, self._dev, self._host, self._specs = {}, {}, {}, {}, {}
        for g in GRAPHS:
            eng = self._runtime.deserialize_cuda_engine(paths[g].read_bytes())
            if eng is None:
                raise EngineCacheError(f"{paths[g]}: TensorRT could not deserialize it; rebuild: fsn engines {bundle.path}")
            self._engines[g] = eng
            self._contexts[g] = eng.create_execution_context()
            self._specs[g] = self._tensor_specs(eng)
        self._allocate()
        self._batch = 0

    def _tensor_specs(self, eng) -> dict[str, dict[str, Any]]:
        trt = self._trt
        specs = {}
        for i in range(eng.num_io_tensors):
            n = eng.get_tensor_name(i)
            specs[n] = {"input": eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT,
                        "dtype": np.dtype(trt.nptype(eng.get_tensor_dtype(n))),
                        "shape": tuple(int(d) for d in eng.get_tensor_shape(n))}
        return specs

    def _allocate(self) -> None:
        """Device buffers for every tensor at max batch; conv5 shared by both engines."""
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
                    self._host[(g, n)] = np.empty(shape, s["dtype"])
                self._dev[(g, n)] = ptr
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
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        freed = set()
        for ptr in getattr(self, "_dev", {}).values():
            if int(ptr) not in freed:
                cudart.cudaFree(ptr)
                freed.add(int(ptr))
        self._dev = {}
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._contexts, self._engines = {}, {}
