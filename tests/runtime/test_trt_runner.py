"""TrtBackend without a GPU: fake ``tensorrt`` and ``cuda.bindings.runtime`` modules (injected into sys.modules)
whose "device memory" is host memory, and fake engines that compute simple functions of their inputs through the
tensor addresses the runner sets. Checks the host/device plumbing: a heads-only ``run`` (conv5 staged from the
host), backbone -> heads with conv5 kept on the "device", pinned staging buffers for every tensor, every
allocation freed when ``__init__`` fails, and the configuration ``fsn engines`` recorded being the one opened."""
from __future__ import annotations

import ctypes
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.runtime import engine_cache

B_SPECS = {"images": (True, (-1, 3, 4, 4)), "conv5": (False, (-1, 2, 4, 4)), "probs": (False, (-1, 3)),
           "aams": (False, (-1, 1, 4, 4)), "region_maps": (False, (-1, 1, 4, 4))}
H_SPECS = {"conv5": (True, (-1, 2, 4, 4)), "boxes": (True, (-1, 2, 4)), "attr_reps": (False, (-1, 2)),
           "region_reps": (False, (-1, 1))}


def backbone_ref(x):
    return {"conv5": x[:, :2] * 2, "probs": x.mean(axis=(2, 3)), "aams": x[:, :1], "region_maps": x[:, 1:2] + 1}


def heads_ref(conv5, boxes):
    return {"attr_reps": conv5.sum(axis=(2, 3)) + boxes.sum(-1),
            "region_reps": conv5.sum(axis=(1, 2, 3))[:, None] - boxes.sum(axis=(1, 2))[:, None]}


class FakeCudart(types.ModuleType):
    """cuda-python's runtime API surface the runner uses; memory is ctypes buffers, so memmove moves data."""

    class cudaMemcpyKind:  # noqa: N801 - mirrors cuda-python
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, fail_malloc_at: int | None = None):
        super().__init__("cuda.bindings.runtime")
        self.dev, self.pinned, self.streams = {}, {}, set()
        self.malloc_calls, self.fail_malloc_at = 0, fail_malloc_at

    def cudaRuntimeGetVersion(self):
        return 0, 12060

    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaGetDeviceProperties(self, i):
        return 0, SimpleNamespace(name=b"Fake GPU\x00", major=8, minor=6)

    def cudaSetDevice(self, i):
        return (0,)

    def cudaStreamCreate(self):
        s = object()
        self.streams.add(id(s))
        self._last_stream = s
        return 0, id(s)

    def cudaStreamDestroy(self, s):
        self.streams.discard(s)
        return (0,)

    def cudaStreamSynchronize(self, s):
        return (0,)

    def cudaMalloc(self, n):
        self.malloc_calls += 1
        if self.fail_malloc_at is not None and self.malloc_calls == self.fail_malloc_at:
            return 2, None  # cudaErrorMemoryAllocation
        buf = ctypes.create_string_buffer(n)
        self.dev[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    def cudaFree(self, p):
        self.dev.pop(int(p))
        return (0,)

    def cudaMallocHost(self, n):
        buf = ctypes.create_string_buffer(n)
        self.pinned[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    def cudaFreeHost(self, p):
        self.pinned.pop(int(p))
        return (0,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(int(dst), int(src), int(n))
        return (0,)


class FakeContext:
    def __init__(self, engine):
        self.engine, self.shapes, self.addr = engine, {}, {}

    def set_input_shape(self, n, shape):
        assert self.engine.specs[n][0], n
        self.shapes[n] = tuple(shape)
        return True

    def get_tensor_shape(self, n):
        if n in self.shapes:
            return self.shapes[n]
        batch = next(iter(self.shapes.values()))[0]
        return (batch,) + self.engine.specs[n][1][1:]

    def set_tensor_address(self, n, p):
        self.addr[n] = int(p)
        return True

    def _array(self, n):
        shape = self.get_tensor_shape(n)
        size = int(np.prod(shape))
        return np.frombuffer((ctypes.c_float * size).from_address(self.addr[n]), np.float32).reshape(shape)

    def execute_async_v3(self, stream):
        ins = {n: self._array(n).copy() for n, (is_in, _) in self.engine.specs.items() if is_in}
        outs = backbone_ref(ins["images"]) if self.engine.graph == "backbone" else heads_ref(ins["conv5"], ins["boxes"])
        for n, v in outs.items():
            self._array(n)[...] = v
        return True


class FakeEngine:
    def __init__(self, graph):
        self.graph = graph
        self.specs = B_SPECS if graph == "backbone" else H_SPECS
        self.names = list(self.specs)
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, n):
        return "in" if self.specs[n][0] else "out"

    def get_tensor_dtype(self, n):
        return "float"

    def get_tensor_shape(self, n):
        return self.specs[n][1]

    def create_execution_context(self):
        return FakeContext(self)


def fake_tensorrt() -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.Logger = type("Logger", (), {"WARNING": 1, "__init__": lambda self, level=1: None})
    trt.init_libnvinfer_plugins = lambda logger, ns: True
    trt.TensorIOMode = SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: np.float32

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return FakeEngine(blob[5:].decode()) if blob.startswith(b"fake:") else None

    trt.Runtime = Runtime
    return trt


@pytest.fixture
def fakes(monkeypatch):
    """Install fake tensorrt + cuda-python; returns a function that (re)installs a cudart with options."""
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())

    def install(**kw):
        cudart = FakeCudart(**kw)
        cuda = types.ModuleType("cuda")
        bindings = types.ModuleType("cuda.bindings")
        bindings.runtime = cudart
        cuda.bindings = bindings
        for name, mod in (("cuda", cuda), ("cuda.bindings", bindings), ("cuda.bindings.runtime", cudart)):
            monkeypatch.setitem(sys.modules, name, mod)
        return cudart

    return install


def stand_in_bundle(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text("{}")
    return SimpleNamespace(path=root, precision="fp32", graph_path=lambda g: root / f"{g}.onnx",
                           manifest={"files": {"backbone.onnx": "a" * 64, "heads.onnx": "b" * 64},
                                     "graphs": {"backbone": {"file": "backbone.onnx"}, "heads": {"file": "heads.onnx"}}})


def prebuild(bundle, config, blobs=None):
    """Engines in the bundle's cache as fsn engines would leave them (the fake builder names the graph)."""
    from fashionsearchnet.runtime.backends.trt import ensure_engines

    calls = []

    def builder(onnx_path, precision, bundle_precision, max_batch, opt_batch, tf32):
        g = Path(onnx_path).stem
        calls.append((g, precision, max_batch, opt_batch, tf32))
        return (blobs or {}).get(g, b"fake:" + g.encode())

    dirs = engine_cache.cache_dirs(bundle.path)
    done = ensure_engines(bundle, config, dirs, builder=builder)
    return done, calls, dirs


def test_heads_only_run_stages_conv5_from_the_host(fakes, tmp_path):
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    cudart = fakes()
    bundle = stand_in_bundle(tmp_path / "bundle")
    prebuild(bundle, BuildConfig("fp32", 4, 1))
    rng = np.random.default_rng(0)
    conv5, boxes = rng.normal(size=(3, 2, 4, 4)).astype(np.float32), rng.normal(size=(3, 2, 4)).astype(np.float32)
    with TrtBackend(bundle, max_batch=4) as be:
        out = be.run("heads", {"conv5": conv5, "boxes": boxes})
        ref = heads_ref(conv5, boxes)
        for n in ref:
            np.testing.assert_allclose(out[n], ref[n], rtol=1e-5, atol=1e-5)
        with pytest.raises(UsageError, match="no input 'images'"):
            be.run("heads", {"images": conv5})
    assert not cudart.dev and not cudart.pinned and not cudart.streams


def test_backbone_then_heads_keeps_conv5_on_the_device(fakes, tmp_path):
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    fakes()
    bundle = stand_in_bundle(tmp_path / "bundle")
    prebuild(bundle, BuildConfig("fp32", 4, 1))
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 4)).astype(np.float32)
    boxes = np.random.default_rng(2).normal(size=(2, 2, 4)).astype(np.float32)
    with TrtBackend(bundle, max_batch=4) as be:
        host = be.backbone(x)
        assert set(host) == {"probs", "aams", "region_maps"}
        np.testing.assert_allclose(host["probs"], backbone_ref(x)["probs"], rtol=1e-6)
        out = be.heads(boxes)
        np.testing.assert_allclose(out["attr_reps"], heads_ref(x[:, :2] * 2, boxes)["attr_reps"], rtol=1e-5)
        with pytest.raises(UsageError, match="max batch 4"):
            be.backbone(np.zeros((5, 3, 4, 4), np.float32))


def test_every_host_staging_buffer_is_pinned(fakes, tmp_path):
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    cudart = fakes()
    bundle = stand_in_bundle(tmp_path / "bundle")
    prebuild(bundle, BuildConfig("fp32", 8, 1))
    be = TrtBackend(bundle, max_batch=8)
    try:
        expected = {("backbone", n) for n in B_SPECS} | {("heads", n) for n in H_SPECS}
        assert set(be._host) == expected  # the heads' conv5 included
        for (g, n), arr in be._host.items():
            assert arr.ctypes.data in cudart.pinned, (g, n)  # page-locked, not np.empty
            assert arr.shape[0] == 8
        assert len(cudart.pinned) == len(expected)
        assert be._dev[("heads", "conv5")] == be._dev[("backbone", "conv5")]  # one device buffer, shared
    finally:
        be.close()
    assert not cudart.pinned and not cudart.dev


@pytest.mark.parametrize("fail_at", [1, 3, 6])
def test_failed_init_frees_everything(fakes, tmp_path, fail_at):
    """cudaMalloc fails part way through: BackendUnavailable, and no device/pinned memory or stream is left."""
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    cudart = fakes(fail_malloc_at=fail_at)
    bundle = stand_in_bundle(tmp_path / "bundle")
    prebuild(bundle, BuildConfig("fp32", 4, 1))
    with pytest.raises(BackendUnavailable, match="cudaMalloc failed"):
        TrtBackend(bundle, max_batch=4)
    assert cudart.malloc_calls == fail_at
    assert not cudart.dev and not cudart.pinned and not cudart.streams


def test_engine_that_does_not_deserialize_is_a_one_line_error_and_frees(fakes, tmp_path):
    """An engine whose sidecar matches but TensorRT rejects (e.g. built by another TensorRT under this name)."""
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    cudart = fakes()
    bundle = stand_in_bundle(tmp_path / "bundle")
    prebuild(bundle, BuildConfig("fp32", 4, 1), blobs={"heads": b"garbage"})
    with pytest.raises(EngineCacheError) as ei:
        TrtBackend(bundle, max_batch=4)
    msg = str(ei.value)
    assert "heads.fp32.b4o1" in msg and "could not deserialize" in msg and "fsn engines" in msg and "\n" not in msg
    assert not cudart.dev and not cudart.pinned and not cudart.streams


def test_runtime_opens_what_fsn_engines_built(fakes, tmp_path):
    """fsn engines --max-batch 16 --opt-batch 8 recorded its configuration: TrtBackend() with no arguments opens
    those engines (no build; the fake tensorrt has no Builder, a build would fail)."""
    from fashionsearchnet.runtime.backends.trt import BuildConfig, TrtBackend

    fakes()
    bundle = stand_in_bundle(tmp_path / "bundle")
    cfg = BuildConfig("fp32", 16, 8, False)
    done, calls, dirs = prebuild(bundle, cfg)
    engine_cache.write_selection(dirs[0], cfg.precision, cfg.max_batch, cfg.opt_batch, cfg.tf32)
    assert [c[3] for c in calls] == [8, 8]  # the opt batch reached the builder
    with TrtBackend(bundle) as be:
        assert be.config == cfg and be.max_batch == 16
    assert all(p.name.split(".")[2] == "b16o8" for p, _ in done.values())


def test_missing_gpu_stack_messages_carry_driver_and_cuda_versions(monkeypatch):
    """Without tensorrt: the message names the extras and the driver / CUDA runtime state (no GPU here)."""
    from fashionsearchnet.runtime.backends import trt as T

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(BackendUnavailable) as ei:
        T.import_tensorrt()
    msg = str(ei.value)
    assert "[gpu-cu12]" in msg and "[gpu-cu13]" in msg
    assert ("no NVIDIA driver found" in msg) or ("NVIDIA driver" in msg)
    assert "CUDA runtime" in msg
