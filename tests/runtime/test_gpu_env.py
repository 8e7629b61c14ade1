"""GPU environment reporting and packaging without a GPU: driver / CUDA runtime lines (planted /proc text and
versions), both onnxruntime packages installed (fake package metadata), the GPU extras in pyproject.toml, and
``fsn engines`` on this machine (no TensorRT, no GPU): one line, non-zero exit, no traceback."""
from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from packaging.requirements import Requirement

from fashionsearchnet.errors import BackendUnavailable
from fashionsearchnet.runtime import gpu_env

ROOT = Path(__file__).resolve().parents[2]


def _dist(name, version):
    return SimpleNamespace(metadata={"Name": name}, version=version)


# ---- both onnxruntime packages ----------------------------------------------------------------------------
def test_detects_both_onnxruntime_packages_from_metadata():
    fake = lambda: [_dist("numpy", "2.0"), _dist("onnxruntime", "1.26.0"), _dist("onnxruntime_gpu", "1.26.0")]  # noqa: E731
    found = gpu_env.onnxruntime_distributions(fake)
    assert found == {"onnxruntime": "1.26.0", "onnxruntime-gpu": "1.26.0"}
    msg = gpu_env.onnxruntime_conflict(found)
    assert "onnxruntime 1.26.0 and onnxruntime-gpu 1.26.0" in msg
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'onnxruntime-gpu[cuda,cudnn]==1.26.0'" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("dists", [[], [("onnxruntime", "1.32.0")], [("onnxruntime-gpu", "1.27.0"), ("numpy", "2")]])
def test_one_onnxruntime_package_is_no_conflict(dists):
    found = gpu_env.onnxruntime_distributions(lambda: [_dist(n, v) for n, v in dists])
    assert gpu_env.onnxruntime_conflict(found) is None


def test_this_venv_has_exactly_one():
    assert list(gpu_env.onnxruntime_distributions()) == ["onnxruntime"]


def _identity_onnx(path):
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_ort_backends_refuse_gpu_and_warn_on_cpu_with_both_installed(tmp_path, monkeypatch, caplog):
    from fashionsearchnet.runtime.backends.ort import OrtBackend

    both = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.26.0"}
    monkeypatch.setattr(gpu_env, "onnxruntime_distributions", lambda *a: dict(both))
    p = _identity_onnx(tmp_path / "g.onnx")
    with pytest.raises(BackendUnavailable) as ei:
        OrtBackend(p, p, kind="ort-cuda")
    msg = str(ei.value)
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in msg and "CUDA runtime" in msg and "\n" not in msg
    with caplog.at_level(logging.WARNING):
        be = OrtBackend(p, p, kind="ort-cpu")
    assert be.name == "ort-cpu"
    assert any("installed together" in r.getMessage() for r in caplog.records)


def test_ort_cuda_unavailable_here_names_extras_and_driver(tmp_path):
    from fashionsearchnet.runtime.backends.ort import OrtBackend

    p = _identity_onnx(tmp_path / "g.onnx")
    with pytest.raises(BackendUnavailable) as ei:
        OrtBackend(p, p, kind="ort-cuda")
    msg = str(ei.value)
    assert "[gpu-cu12]" in msg and "[gpu-cu13]" in msg and "CUDA runtime" in msg
    assert "NVIDIA driver" in msg  # "no NVIDIA driver found" here; the version on a GPU machine


# ---- driver / CUDA runtime --------------------------------------------------------------------------------
def test_driver_version_from_proc_text(tmp_path):
    f = tmp_path / "version"
    f.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
                 "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    assert gpu_env.driver_version(f) == "535.104.05"
    f.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build\n")
    assert gpu_env.driver_version(f) == "580.65.06"
    assert gpu_env.driver_version(tmp_path / "missing") is None
    assert gpu_env.driver_cuda_version(["libno-such-cuda.so.1"]) is None


def test_describe_lines():
    none = gpu_env.DriverInfo(None, None)
    assert gpu_env.describe(none, None) == ("no NVIDIA driver found (no /proc/driver/nvidia/version, libcuda.so.1 "
                                            "not loadable); CUDA runtime: cuda-python not installed")
    ok = gpu_env.describe(gpu_env.DriverInfo("580.65.06", (13, 0)), (12, 9))
    assert ok == "NVIDIA driver 580.65.06 (supports CUDA up to 13.0); CUDA runtime 12.9 (cuda-python)"
    bad = gpu_env.describe(gpu_env.DriverInfo("535.104.05", (12, 2)), (13, 0))
    assert "CUDA 13 packages need a driver that supports CUDA 13" in bad and "[gpu-cu12]" in bad


def test_describe_on_this_machine_says_no_driver():
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("an NVIDIA driver is installed here")
    assert gpu_env.describe().startswith("no NVIDIA driver found")


# ---- extras -----------------------------------------------------------------------------------------------
def _extras():
    d = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return d, {k: [Requirement(r) for r in v] for k, v in d["optional-dependencies"].items()}


@pytest.mark.parametrize("extra,cuda,trt_pkg", [("gpu-cu12", 12, "tensorrt-cu12"), ("gpu-cu13", 13, "tensorrt-cu13")])
def test_gpu_extras_resolve_to_one_cuda_major(extra, cuda, trt_pkg):
    _, ex = _extras()
    reqs = {r.name: r for r in ex[extra]}
    assert set(reqs) == {trt_pkg, "cuda-python", "onnxruntime-gpu"}
    trt, cp, ort = reqs[trt_pkg], reqs["cuda-python"], reqs["onnxruntime-gpu"]
    assert trt.specifier.contains("10.13.3") and not trt.specifier.contains("11.4.0")  # TensorRT 10 only
    assert cp.specifier.contains(f"{cuda}.9.0" if cuda == 12 else "13.4.4")
    assert not cp.specifier.contains(f"{cuda + 1}.0.0") and not cp.specifier.contains(f"{cuda - 1}.9.0")
    assert ort.extras == {"cuda", "cudnn"}
    # onnxruntime-gpu <= 1.26 is built for CUDA 12, >= 1.27 for CUDA 13 (and >= 1.21 has preload_dlls)
    assert ort.specifier.contains("1.26.0") is (cuda == 12) and ort.specifier.contains("1.27.0") is (cuda == 13)
    assert not ort.specifier.contains("1.20.2")


def test_gpu_alias_and_cpu_base():
    proj, ex = _extras()
    assert [str(r) for r in ex["gpu"]] == ["fashionsearchnet-edge[gpu-cu12]"]
    assert proj["name"] == "fashionsearchnet-edge"
    base = {Requirement(r).name for r in proj["dependencies"]}
    assert "onnxruntime" in base and not base & {"onnxruntime-gpu", "tensorrt", "cuda-python", "torch"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`[gpu]` is an alias of `[gpu-cu12]`" in readme


# ---- fsn engines without a GPU ----------------------------------------------------------------------------
def test_fsn_engines_without_tensorrt_is_one_line(tmp_path_factory):
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("GPU machine")
    from tests.support.make_tiny_bundle import asset_copy

    bundle = asset_copy(tmp_path_factory)
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "engines", str(bundle), "--max-batch", "8"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path_factory.mktemp("cwd"))
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert err[0].startswith("fsn engines: error:") and ("tensorrt" in err[0] or "cuda-python" in err[0])
    assert "CUDA runtime" in err[0]
    assert not (bundle / "engines").exists()  # nothing written before TensorRT was found
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "engines", str(bundle), "--opt-batch", "9",
                        "--max-batch", "8"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "1 <= opt <= max" in r.stderr and "Traceback" not in r.stderr
    np.testing.assert_equal(len(r.stderr.strip().splitlines()), 1)
