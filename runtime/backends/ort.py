"""ONNX Runtime backend: CPU provider by default, CUDA / TensorRT execution providers when onnxruntime-gpu
is installed, providers explicit (asking for one that is missing or that failed to load raises
BackendUnavailable; ORT's silent fallback to CPU is detected and refused). IO binding keeps ``conv5`` where
the backbone computed it (device memory with CUDA) and feeds it to the heads without a host round trip."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fashionsearchnet.errors import BackendUnavailable, BundleError, UsageError
from fashionsearchnet.runtime import gpu_env
from fashionsearchnet.runtime.backends.base import HEADS_OUTPUTS, HOST_OUTPUTS, Backend, check_boxes
from fashionsearchnet.whole_numbers import whole_number

log = logging.getLogger(__name__)

PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
DEVICE = {"ort-cpu": "cpu", "ort-cuda": "cuda", "ort-trt": "cuda"}


def available(kind: str) -> bool:
    """Whether ONNX Runtime here offers the provider ``kind`` needs (``ort-cpu``/``ort-cuda``/``ort-trt``)."""
    import onnxruntime as ort

    return PROVIDERS[kind][0] in ort.get_available_providers()


DEFAULT_THREADS = 1


def check_threads(threads: int | None) -> None:
    """``--threads``: None (the runtime default), 0 (ONNX Runtime's default) or a positive count."""
    if threads is not None and (whole_number(threads) is None or threads < 0):
        raise UsageError(f"--threads {threads!r}: give 0 (ONNX Runtime's default, one per core) or a positive count")


def session_options(precision: str = "fp32", threads: int | None = None, device: str = "cpu"):
    """SessionOptions used by the runtime and by export parity checks.

    ``threads`` None = DEFAULT_THREADS (1), 0 = ONNX Runtime's own default (one per physical core). Measured on
    the 2-core dev machine (edge backbone, batch 1, shared load): 1 thread 4.2 ms, 2 threads 6.7 ms with
    spinning / 4.5 ms without, ORT default 8.4 / 4.5 ms; batch 32: 225 vs 186-215 img/s. So one thread and no
    spin-waiting (a kiosk shares its cores with the gallery search and the HTTP service).
    Graph optimisation ORT_ENABLE_ALL, except
    fp16 graphs on the CPU provider: ONNX Runtime 1.32's level-99 fusions crash on the fp16 heads graph there,
    so those run at ORT_ENABLE_EXTENDED (fp16 is meant for GPUs; the CPU path only checks it).
    """
    import onnxruntime as ort

    check_threads(threads)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = DEFAULT_THREADS if threads is None else int(threads)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if precision == "fp16" and device == "cpu":
        level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.graph_optimization_level = level
    return so


GRAPH_IO = {"backbone": (("images",), ("conv5", *HOST_OUTPUTS)), "heads": (("conv5", "boxes"), HEADS_OUTPUTS)}


def _session(ort: Any, graph: str, path: str | Path, so: Any, providers: list, check_io: bool) -> Any:
    """An InferenceSession on ``path``, refusing a file that is not an ONNX graph or (``check_io``) not a bundle's
    ``graph`` (its checksum may still match: a wrong file exported under the right name) with one BundleError line."""
    try:
        s = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, InvalidGraph...)
        msg = " ".join(str(e).split())[:300]
        raise BundleError(f"{path}: not a loadable ONNX graph ({type(e).__name__}: {msg}); re-export the bundle "
                          "with `fsn export`") from None
    if not check_io:
        return s
    inputs, outputs = GRAPH_IO[graph]
    got_in, got_out = {i.name for i in s.get_inputs()}, {o.name for o in s.get_outputs()}
    if not set(inputs) <= got_in or not set(outputs) <= got_out:
        raise BundleError(f"{path}: not the {graph} graph of a bundle (inputs {sorted(got_in)}, outputs "
                          f"{sorted(got_out)}; expected {list(inputs)} -> {list(outputs)}); re-export the bundle")
    return s


def preload_gpu_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries of the ``nvidia-*`` wheels that ``onnxruntime-gpu[cuda,cudnn]`` installs
    (``onnxruntime.preload_dlls()``, ONNX Runtime >= 1.21), so the CUDA provider finds them without
    LD_LIBRARY_PATH. A failure is logged; the session check below then names the provider that did not load."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        log.info("onnxruntime %s has no preload_dlls (needs >= 1.21); CUDA/cuDNN must be on the library path",
                 ort.__version__)
        return
    try:
        preload()
    except Exception as e:  # noqa: BLE001 - any loader failure: log it, the provider check reports the outcome
        log.warning("onnxruntime.preload_dlls() failed: %s", e)


class OrtBackend(Backend):
    """Two ONNX Runtime sessions (backbone, heads) with IO binding between them."""

    def __init__(self, backbone_path: str | Path, heads_path: str | Path, kind: str = "ort-cpu",
                 precision: str = "fp32", threads: int | None = None, device_id: int = 0, check_io: bool = False):
        import onnxruntime as ort

        if kind not in PROVIDERS:
            raise UsageError(f"ONNX Runtime backend {kind!r}: valid: {', '.join(PROVIDERS)}")
        want = PROVIDERS[kind]
        conflict = gpu_env.onnxruntime_conflict()
        if conflict and kind != "ort-cpu":
            raise BackendUnavailable(f"backend {kind}: {conflict} [{gpu_env.describe()}]")
        if conflict:
            log.warning("%s", conflict)
        have = ort.get_available_providers()
        if want[0] not in have:
            hint = "" if kind == "ort-cpu" else (
                "; install the [gpu-cu12] or [gpu-cu13] extra (onnxruntime-gpu with its CUDA/cuDNN libraries) "
                f"matching the driver on a machine with a GPU (docs/deployment-gpu.md) [{gpu_env.describe()}]")
            raise BackendUnavailable(
                f"backend {kind}: ONNX Runtime {ort.__version__} here has no {want[0]} (has {', '.join(have)}){hint}"
            )
        if kind != "ort-cpu":
            preload_gpu_libraries(ort)
        self.name, self.device = kind, DEVICE[kind]
        self.device_id = int(device_id)
        providers = [(p, {"device_id": self.device_id}) if p != "CPUExecutionProvider" else p for p in want]
        so = session_options(precision, threads, self.device)
        self.sessions = {}
        for g, p in (("backbone", backbone_path), ("heads", heads_path)):
            s = _session(ort, g, p, so, providers, check_io)
            if s.get_providers()[0] != want[0]:
                raise BackendUnavailable(
                    f"backend {kind}: {p} runs on {s.get_providers()[0]}, not {want[0]} (the provider failed to "
                    f"load: check the CUDA/cuDNN/TensorRT libraries; {gpu_env.describe()}); choose another backend "
                    "explicitly"
                )
            self.sessions[g] = s
        self._conv5 = None  # OrtValue on self.device, produced by the last backbone()
        self._batch = 0

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if graph not in self.sessions:
            raise UsageError(f"graph {graph!r}: valid: backbone, heads")
        s = self.sessions[graph]
        names = [o.name for o in s.get_outputs()]
        return dict(zip(names, s.run(names, inputs)))

    def backbone(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.ascontiguousarray(images, dtype=np.float32)
        io = self.sessions["backbone"].io_binding()
        io.bind_cpu_input("images", images)
        io.bind_output("conv5", self.device, self.device_id)
        for n in HOST_OUTPUTS:
            io.bind_output(n, "cpu")
        self.sessions["backbone"].run_with_iobinding(io)
        outs = io.get_outputs()
        self._conv5, self._batch = outs[0], images.shape[0]
        return {n: outs[i + 1].numpy() for i, n in enumerate(HOST_OUTPUTS)}

    def heads(self, boxes: np.ndarray) -> dict[str, np.ndarray]:
        boxes = check_boxes(boxes, None if self._conv5 is None else self._batch)
        io = self.sessions["heads"].io_binding()
        io.bind_ortvalue_input("conv5", self._conv5)
        io.bind_cpu_input("boxes", boxes)
        for n in HEADS_OUTPUTS:
            io.bind_output(n, "cpu")
        self.sessions["heads"].run_with_iobinding(io)
        outs = io.get_outputs()
        return {n: outs[i].numpy() for i, n in enumerate(HEADS_OUTPUTS)}

    def close(self) -> None:
        self._conv5 = None
        self.sessions = {}
