"""TensorRT engine cache keys without TensorRT: stale engines (other GPU, TensorRT version, graph, precision,
changed file) are never used; rebuild or refuse. Real TensorRT tests skip here."""
from __future__ import annotations

import importlib.util
import json

import pytest

from fashionsearchnet.errors import BackendUnavailable, EngineCacheError
from fashionsearchnet.runtime import engine_cache as ec
from fashionsearchnet.fileio import sha256_file

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _key(**kw):
    base = dict(graph_sha256="a" * 64, tensorrt_version="10.3.0", compute_capability=(8, 7), gpu="Orin",
                precision="fp16", max_batch=64, opt_batch=1, plat="Linux-aarch64")
    base.update(kw)
    return ec.make_key(**base)


def _cache(tmp_path, key, graph="backbone", payload=b"engine-bytes"):
    eng, _ = ec.engine_paths(tmp_path, graph, key)
    eng.write_bytes(payload)
    ec.write_sidecar(tmp_path, graph, key, sha256_file(eng))
    return eng


def test_key_fields_and_digest():
    k = _key()
    assert k.compute_capability == "8.7" and k.tensorrt == "10.3.0"
    assert k.digest == _key().digest and k.digest != _key(compute_capability=(9, 0)).digest


def test_no_engine_means_build_and_same_key_means_use(tmp_path):
    k = _key()
    assert ec.lookup(tmp_path, "backbone", k, sha256_file)[0] == "build"
    eng = _cache(tmp_path, k)
    assert ec.lookup(tmp_path, "backbone", k, sha256_file) == ("use", eng)


@pytest.mark.parametrize("change", [
    {"compute_capability": (9, 0)},  # another GPU generation
    {"tensorrt_version": "10.14.1"},  # another TensorRT
    {"graph_sha256": "b" * 64},  # the bundle's graph changed
    {"max_batch": 128},  # another profile
    {"plat": "Linux-x86_64"},
])
def test_other_gpu_trt_graph_or_profile_is_stale(tmp_path, change):
    """A sidecar recording another key under this configuration's file name is stale."""
    eng = _cache(tmp_path, _key(**change))
    eng_here, side_here = ec.engine_paths(tmp_path, "backbone", _key())
    if eng != eng_here:  # the configuration is in the file name: put the other one's files under this name
        eng.rename(eng_here)
        eng.with_suffix(".json").rename(side_here)
    assert ec.lookup(tmp_path, "backbone", _key(), sha256_file)[0] == "stale"


def test_gpu_name_alone_does_not_invalidate(tmp_path):
    """The name is in the file name (another GPU model: another file), but a sidecar differing only in the
    name is not stale: compute capability + TensorRT decide validity."""
    eng = _cache(tmp_path, _key())
    side = json.loads(eng.with_suffix(".json").read_text())
    side["key"]["gpu"] = "Jetson AGX Orin 64GB"
    eng.with_suffix(".json").write_text(json.dumps(side))
    assert ec.lookup(tmp_path, "backbone", _key(), sha256_file)[0] == "use"


def test_changed_engine_file_is_stale(tmp_path):
    eng = _cache(tmp_path, _key())
    eng.write_bytes(b"tampered")
    assert ec.lookup(tmp_path, "backbone", _key(), sha256_file)[0] == "stale"


def test_precision_selects_another_file(tmp_path):
    _cache(tmp_path, _key(precision="fp16"))
    assert ec.lookup(tmp_path, "backbone", _key(precision="fp32"), sha256_file)[0] == "build"


def test_stale_error_names_fields_and_fix(tmp_path):
    eng = _cache(tmp_path, _key())
    want = _key(compute_capability=(9, 0), tensorrt_version="11.4.0")
    eng2, side2 = ec.engine_paths(tmp_path, "backbone", want)
    eng.rename(eng2)
    eng.with_suffix(".json").rename(side2)
    err = ec.stale_error(tmp_path, "backbone", want, "/b")
    assert isinstance(err, EngineCacheError)
    msg = str(err)
    assert "tensorrt: 10.3.0 -> 11.4.0" in msg and "compute_capability: 8.7 -> 9.0" in msg
    assert "fsn engines /b --fp16 --max-batch 64 --opt-batch 1" in msg and "\n" not in msg


def test_sidecar_records_key(tmp_path):
    _cache(tmp_path, _key())
    side = json.loads(ec.engine_paths(tmp_path, "backbone", _key())[1].read_text())
    assert side["key"]["tensorrt"] == "10.3.0" and len(side["sha256"]) == 64


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here; this checks the error when it is missing")
def test_asking_for_trt_without_tensorrt_is_a_clear_error(tiny_bundle):
    from fashionsearchnet.runtime.backends import select_backend
    from fashionsearchnet.runtime.bundle import Bundle

    with pytest.raises(BackendUnavailable, match="'tensorrt' package is not installed"):
        select_backend("trt", Bundle.open(tiny_bundle))


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_trt_backend_matches_ort(tiny_bundle):  # pragma: no cover - runs on GPU machines only
    import numpy as np

    from fashionsearchnet.runtime.extractor import FeatureExtractor

    path = tiny_bundle
    imgs = [np.random.default_rng(i).integers(0, 255, (80, 60, 3), dtype=np.uint8) for i in range(3)]
    with FeatureExtractor(path, backend="ort-cpu") as a, FeatureExtractor(path, backend="trt") as b:
        fa, fb = a.extract(imgs), b.extract(imgs)
    np.testing.assert_allclose(fb.attr_reps, fa.attr_reps, atol=1e-3)
