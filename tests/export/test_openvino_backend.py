"""OpenVINO backend (issue 23): parity of every output against PyTorch (fp32 1e-4, bf16 3e-2), int8 bundles,
static shapes, the compiled-model cache (per version and device, read-only bundles, a corrupt blob), backend
selection (auto, explicit, refusals) and the CLI's bad input. CPU here; GPU/NPU runs skip with the reason."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from fashionsearchnet.app.cli import main as fsn
from fashionsearchnet.errors import BackendUnavailable, EngineCacheError, UsageError
from fashionsearchnet.export import parity as P
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.backends import BackendChoice, select_backend
from fashionsearchnet.runtime.backends import openvino as OV
from fashionsearchnet.runtime.bundle import Bundle

from tests.support.make_tiny_bundle import export_tiny_bundle

ov = pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
HAVE = list(ov.Core().available_devices)
CPU_CAPS = list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
needs_bf16 = pytest.mark.skipif("BF16" not in CPU_CAPS, reason=f"this CPU has no bf16 in OpenVINO ({CPU_CAPS})")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(bundle, torch model) of the tiny random-init checkpoint."""
    from fashionsearchnet.training.checkpoint import load_run

    path, run = export_tiny_bundle(tmp_path_factory.mktemp("export"))
    model, _ = load_run(run / "fsn" / "checkpoint.pt")
    return Bundle.open(path), model.eval()


@pytest.fixture(scope="module")
def synth_bundles(tiny_int8_bundles):
    """fp32 and int8 bundles of a tiny run on the tiny synthetic catalogue."""
    return tiny_int8_bundles[1:]


# ---- accuracy ------------------------------------------------------------------------------------------------
def test_fp32_parity_of_every_output_against_pytorch(tiny):
    bundle, model = tiny
    with OV.OpenVinoBackend(bundle) as be:
        res = P.check_parity(model, {g: bundle.graph_path(g) for g in ("backbone", "heads")},
                             bundle.preprocessing.size, "fp32", batches=(1, 3, 5), backend=be)
        hint = be._compiled[("backbone", 0)].get_property("INFERENCE_PRECISION_HINT")
    assert set(res["errors"]) == set(P.BACKBONE_OUT + P.HEADS_OUT)
    assert max(res["errors"].values()) <= 1e-4
    assert "float32" in str(hint).lower()  # fp32 is asked explicitly (the CPU would pick bf16 on AMX)


@needs_bf16
def test_bf16_parity_within_its_looser_tolerance_and_really_bf16(tiny):
    bundle, model = tiny
    paths = {g: bundle.graph_path(g) for g in ("backbone", "heads")}
    with OV.OpenVinoBackend(bundle, precision="bf16") as be:
        res = P.check_parity(model, paths, bundle.preprocessing.size, "bf16", batches=(1, 3), backend=be)
    assert max(res["errors"].values()) <= P.TOLERANCE["bf16"]
    assert res["errors"]["conv5"] > 1e-4  # beyond the fp32 tolerance: bf16 really ran, not a silent fp32
    assert res["aam_top_class_agreement"] > 0.8


def test_parity_beyond_tolerance_is_an_error(tiny, monkeypatch):
    bundle, model = tiny
    monkeypatch.setitem(P.TOLERANCE, "fp32", 1e-12)
    with OV.OpenVinoBackend(bundle) as be, pytest.raises(Exception, match="differs from PyTorch"):
        P.check_parity(model, {g: bundle.graph_path(g) for g in ("backbone", "heads")}, bundle.preprocessing.size,
                       "fp32", backend=be)


def test_int8_bundle_runs_as_it_is_close_to_onnx_runtime(synth_bundles, tiny_synth):
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    b32, b8 = synth_bundles
    imgs = sorted((tiny_synth / "images").glob("*.jpg"))[:12]
    with FeatureExtractor(b8, backend="openvino") as fo, FeatureExtractor(b8, backend="ort-cpu") as fr, \
            FeatureExtractor(b32, backend="openvino") as f32:
        assert fo.backend_name == "openvino-cpu" and fo.bundle.precision == "int8"
        o, r, f = fo.extract(imgs, batch_size=5), fr.extract(imgs, batch_size=5), f32.extract(imgs, batch_size=5)
    assert P.scaled_error(o.attr_reps, r.attr_reps) < P.TOLERANCE["int8"]
    assert P.scaled_error(o.probs, r.probs) < P.TOLERANCE["int8"]
    assert not np.allclose(o.attr_reps, f.attr_reps, atol=1e-5)  # the int8 graph ran, not the fp32 one
    # retrieval is what matters: each openvino int8 global representation is nearest to ORT's of the same image
    d = ((o.global_reps[:, None] - r.global_reps[None]) ** 2).sum(-1)
    assert (np.argmin(d, 1) == np.arange(len(imgs))).all()


# ---- interface -----------------------------------------------------------------------------------------------
def test_kept_conv5_path_equals_the_plain_run_and_onnx_runtime(tiny):
    bundle, _ = tiny
    x = np.random.default_rng(1).normal(size=(3, 3, 64, 64)).astype(np.float32)
    with OV.OpenVinoBackend(bundle) as be, select_backend("ort-cpu", bundle) as ort:
        plain = be.run("backbone", {"images": x})
        bound = be.backbone(x)
        assert set(bound) == {"probs", "aams", "region_maps"}
        boxes = roi.all_boxes(plain["aams"], plain["region_maps"], bundle.schema)
        heads = be.heads(boxes)
        heads_plain = be.run("heads", {"conv5": plain["conv5"], "boxes": boxes})
        ref = ort.run("heads", {"conv5": plain["conv5"], "boxes": boxes})
    for k in bound:
        np.testing.assert_array_equal(bound[k], plain[k])
    for k in heads:
        np.testing.assert_array_equal(heads[k], heads_plain[k])
        assert P.scaled_error(heads[k], ref[k]) < 1e-5


def test_heads_before_backbone_wrong_batch_and_bad_graph_are_errors(tiny):
    bundle, _ = tiny
    with OV.OpenVinoBackend(bundle) as be:
        with pytest.raises(UsageError, match="before backbone"):
            be.heads(np.zeros((1, 8, 4), np.float32))
        be.backbone(np.zeros((2, 3, 64, 64), np.float32))
        with pytest.raises(UsageError, match="batch 1 but the last backbone\\(\\) batch was 2"):
            be.heads(np.zeros((1, 8, 4), np.float32))
        with pytest.raises(UsageError, match="valid: backbone, heads"):
            be.run("neck", {})


def test_static_shapes_compile_per_batch_and_agree(tiny):
    """The NPU path (static shapes, one compiled model per batch size), exercised on the CPU."""
    bundle, _ = tiny
    x = np.random.default_rng(2).normal(size=(4, 3, 64, 64)).astype(np.float32)
    with OV.OpenVinoBackend(bundle) as dyn, OV.OpenVinoBackend(bundle, static_shapes=True) as st:
        a, b = dyn.run("backbone", {"images": x}), st.run("backbone", {"images": x})
        st.run("backbone", {"images": x[:1]})
        assert {k for k in st._compiled if k[0] == "backbone"} == {("backbone", 1), ("backbone", 4)}
        dyn.run("heads", {"conv5": a["conv5"], "boxes": np.zeros((4, 8, 4), np.float32)})
        assert ("backbone", 0) in dyn._compiled and ("heads", 4) in dyn._compiled  # CPU: static heads only
    for k in a:
        assert P.scaled_error(b[k], a[k]) < 1e-5


@pytest.mark.parametrize("device", ["GPU", "NPU"])
def test_parity_on_intel_gpu_and_npu(tiny, device):
    if not OV.device_present(device, HAVE):
        pytest.skip(f"no OpenVINO {device} device here (available: {', '.join(HAVE)})")
    bundle, model = tiny
    with OV.OpenVinoBackend(bundle, device=device) as be:
        res = P.check_parity(model, {g: bundle.graph_path(g) for g in ("backbone", "heads")},
                             bundle.preprocessing.size, "fp32", batches=(1, 3), backend=be)
    assert max(res["errors"].values()) <= 1e-3  # GPU plugin fp32 kernels differ more than the CPU's


# ---- compiled-model cache ------------------------------------------------------------------------------------
def _copy(bundle, dst) -> Bundle:
    shutil.copytree(bundle.path, dst, ignore=shutil.ignore_patterns(OV.CACHE_FOLDER))
    return Bundle.open(dst)


def test_cache_per_version_and_device_and_reused(tiny, tmp_path):
    b = _copy(tiny[0], tmp_path / "b")
    with OV.OpenVinoBackend(b) as be:
        folder = be.cache
    short = ov.get_version().split("-")[0]
    assert folder == b.path / "openvino" / short / "CPU"
    blobs = sorted(p.name for p in folder.glob("*.blob"))
    assert len(blobs) == 2 and (folder / OV.CACHE_RECORD).is_file()
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.blob")}
    with OV.OpenVinoBackend(b):
        pass
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.blob")} == mtimes  # read, not rebuilt


def test_read_only_bundle_caches_in_the_user_cache_folder(tiny, tmp_path, monkeypatch, caplog):
    b = _copy(tiny[0], tmp_path / "b")
    (b.path / OV.CACHE_FOLDER).write_text("not a folder")  # mkdir inside the bundle fails, as on a read-only one
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with caplog.at_level(logging.INFO, logger=OV.__name__), OV.OpenVinoBackend(b) as be:
        out = be.run("backbone", {"images": np.zeros((1, 3, 64, 64), np.float32)})
        folder = be.cache
    assert folder.is_relative_to(tmp_path / "xdg" / "fashionsearchnet" / "openvino" / b.sha256[:16])
    assert len(list(folder.glob("*.blob"))) == 2 and np.isfinite(out["conv5"]).all()
    assert any("cannot be written" in r.getMessage() for r in caplog.records)


def test_corrupt_cached_model_is_named_removed_and_rebuilt(tiny, tmp_path, caplog):
    b = _copy(tiny[0], tmp_path / "b")
    x = np.random.default_rng(3).normal(size=(2, 3, 64, 64)).astype(np.float32)
    with OV.OpenVinoBackend(b) as be:
        ref = be.run("backbone", {"images": x})
        blob = sorted(be.cache.glob("*.blob"))[0]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    blob.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=OV.__name__), OV.OpenVinoBackend(b) as be:
        got = be.run("backbone", {"images": x})
    assert any(blob.name in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)
    assert blob.is_file() and blob.read_bytes() != bytes(data)  # rebuilt in place
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-6)


def test_corrupt_cached_model_that_cannot_be_removed_is_a_one_line_error(tiny, tmp_path, monkeypatch):
    b = _copy(tiny[0], tmp_path / "b")
    with OV.OpenVinoBackend(b) as be:
        blob = sorted(be.cache.glob("*.blob"))[0]
    blob.write_bytes(b"garbage")

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(OV, "_remove", refuse)  # as in a folder this user may read but not change
    with pytest.raises(EngineCacheError, match="corrupt cached OpenVINO model") as e:
        OV.OpenVinoBackend(b)
    assert blob.name in str(e.value) and "\n" not in str(e.value) and "delete the folder" in str(e.value)


# ---- selection and refusals ----------------------------------------------------------------------------------
def test_devices_and_precisions_by_name():
    assert OV.normalize_device(None) == "CPU" and OV.normalize_device("gpu.1") == "GPU.1"
    with pytest.raises(UsageError, match="CPU, GPU, GPU.<n>, NPU or AUTO"):
        OV.normalize_device("cuda")
    assert OV.device_present("GPU", ["CPU", "GPU.0"]) and not OV.device_present("NPU", ["CPU", "GPU.0"])
    assert OV.is_openvino_device("npu") and not OV.is_openvino_device("cpu") and not OV.is_openvino_device(None)
    with pytest.raises(BackendUnavailable, match="does not support it .*FP32, INT8.*use --precision fp32"):
        OV.check_precision("bf16", "CPU", ["FP32", "INT8"])
    with pytest.raises(BackendUnavailable, match="name the device"):
        OV.check_precision("bf16", "AUTO", [])
    OV.check_precision("fp16", "GPU", ["FP32", "FP16"])


def test_missing_device_is_a_one_line_error(tiny):
    missing = next((d for d in ("NPU", "GPU") if not OV.device_present(d, HAVE)), None)
    if missing is None:
        pytest.skip("this machine has both an Intel GPU and an NPU")
    with pytest.raises(BackendUnavailable, match=f"no {missing} device here .*use --device CPU"):
        select_backend(BackendChoice("openvino", missing), tiny[0])


def test_bf16_where_the_cpu_lacks_it_is_refused(tiny, monkeypatch):
    real = ov.Core.get_property

    def no_bf16(self, device, name):
        got = real(self, device, name)
        return [c for c in got if c != "BF16"] if name == "OPTIMIZATION_CAPABILITIES" else got

    monkeypatch.setattr(ov.Core, "get_property", no_bf16)
    with pytest.raises(BackendUnavailable, match="precision bf16: OpenVINO device CPU does not support it"):
        select_backend(BackendChoice("openvino", "CPU", "bf16"), tiny[0])


def test_auto_takes_openvino_only_on_intel_where_it_gains(tiny, monkeypatch, caplog):
    bundle = tiny[0]
    monkeypatch.setattr(OV, "cpu_vendor_name", lambda core: "AMD EPYC 9R14")
    assert "not Intel" in OV.auto_skip_reason(bundle, None, "bf16")
    with caplog.at_level(logging.INFO, logger="fashionsearchnet.runtime.backends"):
        be = select_backend("auto", bundle)
    be.close()
    assert be.name == "ort-cpu"
    assert any("openvino: openvino: the CPU is AMD EPYC 9R14, not Intel" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendUnavailable, match="bf16 runs on --backend openvino only"):
        select_backend(BackendChoice("auto", precision="bf16"), bundle)  # never a silent fp32 on ort-cpu
    monkeypatch.setattr(OV, "cpu_vendor_name", lambda core: "Intel(R) Xeon(R) Platinum 8480+")
    assert "no faster than ort-cpu" in OV.auto_skip_reason(bundle, None, None)  # fp32: measured equal
    assert "not an OpenVINO device" in OV.auto_skip_reason(bundle, "cuda", None)
    if "BF16" in CPU_CAPS:
        with caplog.at_level(logging.INFO, logger="fashionsearchnet.runtime.backends"):
            be = select_backend(BackendChoice("auto", precision="bf16"), bundle)
        be.close()
        assert be.name == "openvino-cpu" and be.precision == "bf16"
        assert any("backend auto -> openvino-cpu" in r.getMessage() for r in caplog.records)


def test_other_backends_refuse_openvino_devices(tiny):
    with pytest.raises(BackendUnavailable, match="--device NPU is an OpenVINO device; use --backend openvino"):
        select_backend(BackendChoice("ort-cpu", "NPU"), tiny[0])


# ---- CLI -----------------------------------------------------------------------------------------------------
def test_index_and_search_through_openvino_and_cli_refusals(synth_bundles, tiny_synth, tmp_path, capsys):
    b32, _ = synth_bundles
    gal = tmp_path / "g"
    assert fsn(["index", str(b32), str(tiny_synth), "--out", str(gal), "--backend", "openvino",
                "--precision", "fp32", "--device", "CPU"]) == 0
    img = sorted((tiny_synth / "images").glob("*.jpg"))[0]
    q = tmp_path / "q.jpg"
    shutil.copy(img, q)
    capsys.readouterr()
    assert fsn(["search", str(gal), str(q), "--backend", "openvino", "--json"]) == 0
    assert '"results"' in capsys.readouterr().out
    missing = next((d for d in ("NPU", "GPU") if not OV.device_present(d, HAVE)), None)
    if missing:
        rc = fsn(["search", str(gal), str(q), "--backend", "openvino", "--device", missing])
        err = _error_lines(capsys)
        assert rc != 0 and len(err) == 1 and f"no {missing} device here" in err[0]
    rc = fsn(["search", str(gal), str(q), "--backend", "ort", "--precision", "bf16"])
    err = _error_lines(capsys)
    assert rc != 0 and len(err) == 1 and "bf16 runs on --backend openvino only" in err[0]


def _error_lines(capsys) -> list[str]:
    """stderr lines that are not log records (the CLI's error)."""
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and ln.split()[0] not in
            ("INFO", "WARNING", "DEBUG")]


def test_fsn_bench_openvino_rows_beside_ort(tiny, tmp_path):
    import json

    out = tmp_path / "bench.json"
    rows = "ort-cpu,openvino-cpu,openvino-cpu-bf16,openvino-npu"
    assert fsn(["bench", str(tiny[0].path), "--json", str(out), "--backends", rows, "--runs", "3", "--warmup", "1",
                "--batches", "2", "--threads", "1"]) == 0
    res = json.loads(out.read_text())
    want = {"ort-cpu", "openvino-cpu"} | ({"openvino-cpu-bf16"} if "BF16" in CPU_CAPS else set())
    assert want <= set(res) and all(res[k]["stages_ms_p50"]["backbone"] > 0 for k in want)
    md = out.with_suffix(".md").read_text()
    assert "| openvino-cpu |" in md and "openvino " in md  # the row and the OpenVINO version in the machine line
    if not OV.device_present("NPU", HAVE):
        assert "openvino-npu (backend openvino: no NPU device here" in md
