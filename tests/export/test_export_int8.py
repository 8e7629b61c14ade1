"""fsn export --precision int8: ONNX Runtime static quantisation (QDQ) of the backbone calibrated on the run's
training images; manifest, TensorRT Q/DQ check, int8 vs fp32 features, calibration errors."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.errors import CheckpointError, DatasetError, ParityError
from fashionsearchnet.export import parity as P
from fashionsearchnet.export.quantize import load_calibration
from fashionsearchnet.export.trt_compat import check_graph
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.runtime.extractor import FeatureExtractor
from tests.support.tiny_runs import tiny_run


@pytest.fixture(scope="module")
def bundles(tiny_int8_bundles):
    """(run, fp32 bundle, int8 bundle calibrated on the folder the checkpoint records, 64 images)."""
    return tiny_int8_bundles


@pytest.mark.slow
def test_manifest_records_int8_and_the_calibration_set(bundles, tiny_synth):
    _, _, b8 = bundles
    m = json.loads((b8 / "manifest.json").read_text())
    ds = load_dataset(tiny_synth)
    assert m["precision"] == "int8"
    q = m["quantization"]
    assert q["format"] == "QDQ" and q["graphs"] == ["backbone"]
    c = q["calibration"]
    assert c["folder"] == str(ds.root) and c["split"] == "train" and c["images"] == 64
    assert c["train_images"] == len(ds.indices("train")) and c["parity_held_out"] is True
    assert len(c["images_sha256"]) == 64
    assert m["parity"]["tolerance"] == P.TOLERANCE["int8"] and m["parity"]["inputs"] == "given images"
    assert 0 < max(m["parity"]["errors"].values()) <= P.TOLERANCE["int8"]
    assert all(g["ok"] for g in m["tensorrt"].values()), m["tensorrt"]
    props = {p.key: p.value for p in onnx.load(str(b8 / "backbone.onnx")).metadata_props}
    assert props["fsn.precision"] == "int8"


@pytest.mark.slow
def test_backbone_is_qdq_with_symmetric_int8_and_heads_stay_float(bundles):
    _, _, b8 = bundles
    g = onnx.load(str(b8 / "backbone.onnx")).graph
    ops = [n.op_type for n in g.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    dq_out = {n.output[0]: n for n in g.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in g.node if n.op_type == "Conv"]
    assert convs and all(n.input[1] in dq_out for n in convs)  # every conv weight arrives through Q/DQ
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = inits[n.input[2]]
            assert zp.dtype == np.int8 and not zp.any()
    hops = {n.op_type for n in onnx.load(str(bundles[2] / "heads.onnx")).graph.node}
    assert not hops & {"QuantizeLinear", "DequantizeLinear"}


@pytest.mark.slow
def test_int8_bundle_opens_and_features_are_close_to_fp32(bundles, tiny_synth):
    _, b32, b8 = bundles
    ds = load_dataset(tiny_synth)
    imgs = [ds.images[r] for r in ds.indices("gallery")[:24]]
    assert Bundle.open(b8).precision == "int8"
    with FeatureExtractor(b32, backend="ort-cpu") as f32, FeatureExtractor(b8, backend="ort-cpu") as f8:
        a, b = f32.extract(imgs, batch_size=8), f8.extract(imgs, batch_size=5)
    assert f8.backend_name == "ort-cpu"
    assert np.abs(a.probs - b.probs).max() < 0.02
    same_box = np.all(a.attr_boxes == b.attr_boxes, axis=-1)
    assert same_box.mean() >= 0.75  # measured 0.86 (random-init tiny model: flat AAMs, near-tie boxes)
    ra, rb = a.attr_reps[same_box], b.attr_reps[same_box]
    rel = np.linalg.norm(ra - rb, axis=-1) / np.maximum(np.linalg.norm(ra, axis=-1), 1e-6)
    assert np.median(rel) < 0.1 and rel.max() < 0.25  # measured 0.056 / 0.12
    # each int8 global representation is nearest to the fp32 one of the same image (search is preserved)
    # (or, for a random-init model, to another image's fp32 one that is itself within the int8 error: colour
    # variants of one design can be that close before training)
    d = np.sqrt(((b.global_reps[:, None, :] - a.global_reps[None, :, :]) ** 2).sum(-1))
    own = np.diag(d)
    nearest = d.argmin(1)
    wrong = np.flatnonzero(nearest != np.arange(len(imgs)))
    assert len(wrong) <= 2, wrong
    for i in wrong:
        assert np.linalg.norm(a.global_reps[nearest[i]] - a.global_reps[i]) <= 2 * own[i]
    assert not np.array_equal(a.aams, b.aams)  # the int8 graph really ran


@pytest.mark.slow
def test_calibration_images_are_preprocessed_exactly_like_the_runtime(bundles, tiny_synth):
    ds = load_dataset(tiny_synth)
    b = Bundle.open(bundles[1])
    cal = load_calibration(tiny_synth, ds.schema, b.preprocessing, count=10_000)
    train = ds.indices("train")
    assert cal.images.shape == (len(train), 3, 64, 64)
    with FeatureExtractor(b, backend="ort-cpu") as fx:
        want, _ = fx.preprocess([ds.images[r] for r in train])
    np.testing.assert_array_equal(cal.images, want)
    assert cal.info["parity_held_out"] is False  # every training image calibrates: parity reuses some


def test_region_class_set_agreement_by_hand():
    # two attributes (3 and 2 classes); regions: r0 <- attribute 0, r1 <- attributes 0 and 1, r2 <- attribute 1
    a = np.array([[0.70, 0.25, 0.05, 0.95, 0.05],
                  [0.50, 0.45, 0.05, 0.60, 0.40]], np.float32)
    b = np.array([[0.70, 0.21, 0.09, 0.95, 0.05],   # same sets: {0, 1} and {0}
                  [0.52, 0.40, 0.08, 0.92, 0.08]], np.float32)  # image 1: attribute 1 drops class 1 (0.40 -> 0.08)
    got = P.region_class_set_agreement(a, b, [3, 2], [[0], [0, 1], [1]])
    assert got.tolist() == [[True, True, True], [True, False, False]]
    c = b.copy()
    c[0, 2] = 0.11  # image 0: attribute 0's class 2 crosses 0.1 -> every region that reads attribute 0 differs
    assert P.region_class_set_agreement(a, c, [3, 2], [[0], [0, 1], [1]])[0].tolist() == [False, False, True]
    assert P.region_class_set_agreement(a, b, [3, 2], []).shape == (2, 0)


@pytest.mark.slow
def test_parity_beyond_the_int8_tolerance_is_an_error(bundles, tiny_synth, monkeypatch):
    from fashionsearchnet.training.checkpoint import load_run

    run, _, b8 = bundles
    model, meta = load_run(run / "fsn" / "checkpoint.pt")
    cal = load_calibration(tiny_synth, meta["schema"], meta["preprocessing"], count=16)
    paths = {"backbone": b8 / "backbone.onnx", "heads": b8 / "heads.onnx"}
    ok = P.check_parity(model, paths, 64, "int8", images=cal.parity_images)
    assert 0 < ok["errors"]["conv5"] <= P.TOLERANCE["int8"] and ok["aam_top_class_agreement"] > 0.8
    assert 0.5 < ok["region_class_set_agreement"] <= 1.0
    monkeypatch.setitem(P.TOLERANCE, "int8", 1e-6)
    with pytest.raises(ParityError, match="int8") as e:
        P.check_parity(model, paths, 64, "int8", images=cal.parity_images)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_bad_calibration_folder_is_a_one_line_error(tmp_path, bundles):
    from fashionsearchnet.app.cli import main
    from fashionsearchnet.export.exporter import export_run

    run = bundles[0]
    with pytest.raises(DatasetError, match="--calibration") as e:
        export_run(run, tmp_path / "b", precision="int8", calibration=tmp_path / "nope")
    assert "\n" not in str(e.value) and "nope" in str(e.value)
    assert not (tmp_path / "b").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "attributes.csv").write_text("image,split,category\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="--calibration") as e:
        export_run(run, tmp_path / "b", precision="int8", calibration=other)
    assert "\n" not in str(e.value)
    assert main(["export", str(run), "--out", str(tmp_path / "b"), "--precision", "int8",
                 "--calibration", str(tmp_path / "nope")]) != 0
    assert not (tmp_path / "b").exists()


def test_run_without_recorded_data_needs_calibration(tmp_path, tiny_synth):
    from fashionsearchnet.export.exporter import export_run

    run = tiny_run(tmp_path / "run", tiny_synth, record_data=False)
    with pytest.raises(CheckpointError, match="--calibration") as e:
        export_run(run, tmp_path / "b", precision="int8")
    assert "\n" not in str(e.value)


def _qdq_conv_model(zero_point: int) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.int8), "w_q")
    ws = numpy_helper.from_array(np.full(2, 0.1, np.float32), "w_s")
    wz = numpy_helper.from_array(np.zeros(2, np.int8), "w_z")
    xs = numpy_helper.from_array(np.array(0.05, np.float32), "x_s")
    xz = numpy_helper.from_array(np.array(zero_point, np.int8), "x_z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xd"], name="dq"),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dqw", axis=0),
             helper.make_node("Conv", ["xd", "w"], ["y"], name="conv")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 4, 4])],
                          [w, ws, wz, xs, xz])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


def test_trt_check_accepts_symmetric_qdq_and_refuses_a_nonzero_zero_point(tmp_path):
    onnx.save(_qdq_conv_model(0), str(tmp_path / "ok.onnx"))
    onnx.save(_qdq_conv_model(3), str(tmp_path / "bad.onnx"))
    assert check_graph(tmp_path / "ok.onnx").ok
    rep = check_graph(tmp_path / "bad.onnx")
    assert not rep.ok and any("zero point 'x_z'" in p for p in rep.problems)
