"""TensorRT compatibility without a GPU: every exported graph against the TensorRT ONNX parser's operator list,
and planted graphs that TensorRT rejects (MaxRoiPool, 5-D GridSample, dynamic non-batch axes, custom ops)."""
from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from fashionsearchnet.export import trt_ops
from fashionsearchnet.export.trt_compat import check_graph


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("graph", ["backbone", "heads"])
def test_every_exported_graph_parses_on_tensorrt(tiny_export, precision, graph):
    path, _ = tiny_export(precision=precision)
    rep = check_graph(path / f"{graph}.onnx")
    assert rep.ok, rep.problems
    assert trt_ops.OPSET_MIN <= rep.opset <= trt_ops.OPSET_MAX
    assert set(rep.ops) <= trt_ops.SUPPORTED
    assert "MaxRoiPool" not in rep.ops and not rep.plugins  # ROI pooling is GridSample, no plugin needed
    if graph == "heads":
        assert "GridSample" in rep.ops


def _save(tmp_path, nodes, inputs, outputs, inits=(), opset=17, name="g.onnx"):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    p = tmp_path / name
    onnx.save(m, str(p))
    return p


def _t(name, shape, dt=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dt, shape)


def test_max_roi_pool_is_rejected(tmp_path):
    p = _save(tmp_path, [helper.make_node("MaxRoiPool", ["x", "r"], ["y"], pooled_shape=[2, 2], name="pool")],
              [_t("x", ["B", 4, 7, 7]), _t("r", [3, 5])], [_t("y", [3, 4, 2, 2])])
    rep = check_graph(p)
    assert not rep.ok and any("'pool' (MaxRoiPool): not supported" in s for s in rep.problems)


def test_roi_align_needs_the_plugin(tmp_path):
    p = _save(tmp_path, [helper.make_node("RoiAlign", ["x", "r", "i"], ["y"], output_height=2, output_width=2)],
              [_t("x", ["B", 4, 7, 7]), _t("r", [3, 4]), _t("i", [3], TensorProto.INT64)], [_t("y", [3, 4, 2, 2])])
    rep = check_graph(p)
    assert rep.plugins and "ROIAlign_TRT" in rep.plugins[0]


def test_five_d_grid_sample_and_dynamic_axes_are_rejected(tmp_path):
    x = _t("x", ["B", 4, 3, 7, 7])
    grid = _t("grid", ["B", 2, 2, 2, 3])
    p = _save(tmp_path, [helper.make_node("GridSample", ["x", "grid"], ["y"], name="gs")], [x, grid],
              [_t("y", ["B", 4, "K", 2, 2])], opset=20)
    rep = check_graph(p)
    assert any("GridSample on a 5-D input" in s for s in rep.problems)
    assert any("tensor 'y' axis 2 is dynamic (K)" in s for s in rep.problems)


def test_custom_domain_opset_and_non_constant_weights(tmp_path):
    n1 = helper.make_node("MyOp", ["x"], ["h"], domain="com.example", name="mine")
    n2 = helper.make_node("Conv", ["h", "w"], ["y"], name="conv")
    p = _save(tmp_path, [n1, n2], [_t("x", ["B", 3, 8, 8]), _t("w", [4, 3, 3, 3])], [_t("y", ["B", 4, 6, 6])],
              opset=21)
    rep = check_graph(p)
    text = " | ".join(rep.problems)
    assert "opset 21 outside TensorRT's 9..20" in text
    assert "custom domain 'com.example'" in text
    assert "weights 'w' are not an initializer" in text


def test_supported_list_is_data_with_its_source():
    assert "onnx-tensorrt" in trt_ops.SOURCE
    assert {"Conv", "GridSample", "Einsum", "Softmax", "ArgMax", "GatherElements"} <= trt_ops.SUPPORTED
    assert "MaxRoiPool" not in trt_ops.SUPPORTED and "RoiAlign" in trt_ops.NEEDS_PLUGIN
