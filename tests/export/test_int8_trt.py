"""INT8 bundles TensorRT can parse: ``quantize_backbone`` keeps biases float (no DequantizeLinear of int32) and the
TensorRT operator check flags a DequantizeLinear whose input TensorRT cannot dequantise. Small conv graphs built
here with onnx.helper (no torch)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fashionsearchnet.export.quantize import quantize_backbone
from fashionsearchnet.export.trt_compat import check_graph


def _conv_model(path):
    """images (N,3,8,8) -> Conv(3->4, bias) -> Relu -> Conv(4->2, bias) -> conv5: a backbone-shaped graph."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(size=(2, 4, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(size=2).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["conv5"], name="conv2")]
    g = helper.make_graph(nodes, "backbone", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("conv5", TensorProto.FLOAT, ["N", 2, 8, 8])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _dq_input_types(path) -> list[int]:
    g = onnx.load(str(path)).graph
    inits = {i.name: i.data_type for i in g.initializer}
    return [inits.get(n.input[0], 0) for n in g.node if n.op_type == "DequantizeLinear"]


@pytest.fixture(scope="module")
def calib():
    return np.random.default_rng(1).normal(size=(16, 3, 8, 8)).astype(np.float32)


def test_int8_export_keeps_biases_float_and_passes_the_trt_check(tmp_path, calib):
    src = _conv_model(tmp_path / "b.onnx")
    dst = tmp_path / "b8.onnx"
    quantize_backbone(src, dst, calib, batch=8)
    types = _dq_input_types(dst)
    assert types and TensorProto.INT32 not in types, types  # weights are int8 DQs, no int32 bias DQ
    assert TensorProto.INT8 in types
    g = onnx.load(str(dst)).graph
    biases = {n.input[2] for n in g.node if n.op_type == "Conv" and len(n.input) > 2}
    assert biases and all(b in {i.name for i in g.initializer} for b in biases)  # float initializers, no DQ
    rep = check_graph(dst)
    assert rep.ok, rep.problems


def test_the_check_flags_ort_default_quantised_bias(tmp_path, calib):
    """ONNX Runtime's default (QuantizeBias=True) makes int32 bias DQs: the check must name them and the fix."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class R(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"images": calib}])

        def get_next(self):
            return next(self.it, None)

    src = _conv_model(tmp_path / "b.onnx")
    dst = tmp_path / "bias32.onnx"
    quantize_static(str(src), str(dst), R(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    assert TensorProto.INT32 in _dq_input_types(dst)
    rep = check_graph(dst)
    bad = [p for p in rep.problems if "int32" in p]
    assert len(bad) == 2, rep.problems  # one per conv bias
    assert all("QuantizeBias=False" in p and "DequantizeLinear" in p for p in bad)


@pytest.mark.parametrize("dtype,flagged", [(TensorProto.INT32, True), (TensorProto.UINT8, True),
                                           (TensorProto.INT8, False)])
def test_planted_dequantize_input_types(tmp_path, dtype, flagged):
    """A DequantizeLinear of a planted initializer: int32 and uint8 are flagged, int8 passes."""
    np_t = {TensorProto.INT32: np.int32, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}[dtype]
    inits = [numpy_helper.from_array(np.ones((4, 3, 1, 1), np_t), "wq"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np_t), "zp")]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["w"], name="planted_dq"),
             helper.make_node("Conv", ["images", "w"], ["conv5"], name="conv")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 4, 4])],
                          [helper.make_tensor_value_info("conv5", TensorProto.FLOAT, ["N", 4, 4, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, str(tmp_path / "p.onnx"))
    problems = [p for p in check_graph(tmp_path / "p.onnx").problems if "planted_dq" in p and "dequantises only" in p]
    assert bool(problems) is flagged, problems
