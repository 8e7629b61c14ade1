"""Check an ONNX graph against what the TensorRT ONNX parser accepts, without TensorRT or a GPU.

Checks: opset range, every operator (``export/trt_ops.py``), restrictions that matter for our graphs
(GridSample 4-D, Conv/Gemm weights are initializers, Slice/Squeeze/Unsqueeze axes constant, TopK K constant,
no MaxRoiPool, RoiAlign needs the plugin) and static shapes except the batch axis on inputs and outputs.
INT8 (QDQ) graphs: a Conv weight may be a DequantizeLinear of an initializer (TensorRT's explicit quantisation
pattern); QuantizeLinear/DequantizeLinear need constant scales and zero points that are 0 (TensorRT supports
symmetric quantisation only), and every DequantizeLinear input must be of a type TensorRT dequantises (int8,
int4, fp8, fp4: an int32 input, ONNX Runtime's quantised bias, is rejected by the parser).
Needs the ``onnx`` package (export side), no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fashionsearchnet.export import trt_ops


@dataclass
class CompatReport:
    """Result of :func:`check_graph`: ``problems`` (fatal), ``plugins`` needed, ``ops`` used."""

    path: str
    opset: int
    ops: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _const_names(graph) -> set[str]:
    names = {i.name for i in graph.initializer}
    names |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return names


def _qdq_problems(n, where: str, consts: set[str], inits: dict) -> list[str]:
    """QuantizeLinear/DequantizeLinear: constant scale and zero point, zero point all 0 (TensorRT: symmetric)."""
    from onnx import numpy_helper

    out = []
    for i, what in ((1, "scale"), (2, "zero point")):
        if len(n.input) > i and n.input[i] and n.input[i] not in consts:
            out.append(f"{where}: {what} {n.input[i]!r} is computed at run time; TensorRT needs a constant")
    if len(n.input) > 2 and n.input[2] in inits and numpy_helper.to_array(inits[n.input[2]]).any():
        out.append(f"{where}: zero point {n.input[2]!r} is not 0; TensorRT supports symmetric quantisation only "
                   "(quantise with ActivationSymmetric/WeightSymmetric)")
    return out


def _dtypes(graph) -> dict[str, int]:
    """Known element types (TensorProto enums) of named tensors: initializers, value_info, inputs/outputs, and
    QuantizeLinear outputs (the zero point's type, uint8 when it has none: the ONNX default)."""
    out = {vi.name: vi.type.tensor_type.elem_type for vi in list(graph.value_info) + list(graph.input) + list(graph.output)
           if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}
    out.update({i.name: i.data_type for i in graph.initializer})
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = a.t.data_type
    for n in graph.node:
        if n.op_type == "QuantizeLinear" and n.output[0] not in out:
            out[n.output[0]] = out.get(n.input[2], 0) if len(n.input) > 2 and n.input[2] else 2
    return out


def _dq_input_problem(n, where: str, dtypes: dict[str, int]) -> str | None:
    """A DequantizeLinear whose input TensorRT cannot dequantise (int32 = a quantised bias, uint8, ...)."""
    t = dtypes.get(n.input[0])
    if not t or t in trt_ops.DQ_INPUT_DTYPES:
        return None
    name = trt_ops.ONNX_DTYPE_NAMES.get(t, f"ONNX dtype {t}")
    fix = ("a quantised bias: quantise with extra option QuantizeBias=False so biases stay float"
           if t == 6 else "quantise to signed int8 (QuantType.QInt8)")
    return (f"{where}: input {n.input[0]!r} is {name}; TensorRT dequantises only "
            f"{'/'.join(trt_ops.DQ_INPUT_DTYPES.values())} ({fix})")


def check_graph(path: str | Path, batch_axis_name: str | None = None) -> CompatReport:
    """Check one ONNX file; returns a report whose ``problems`` name the node, operator and fix."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    rep = CompatReport(str(path), opset)
    if not trt_ops.OPSET_MIN <= opset <= trt_ops.OPSET_MAX:
        rep.problems.append(
            f"{path}: opset {opset} outside TensorRT's {trt_ops.OPSET_MIN}..{trt_ops.OPSET_MAX}; re-export with opset 17-20"
        )
    g = model.graph
    consts = _const_names(g)
    inits = {i.name: i for i in g.initializer}
    # outputs of DequantizeLinear(initializer): constant weights in TensorRT's explicit quantisation
    dq_consts = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in consts}
    dtypes = _dtypes(g)
    shapes = {vi.name: vi for vi in list(g.value_info) + list(g.input) + list(g.output)}
    # Function-based models (local functions) would hide operators: inline view of top-level nodes only.
    if model.functions:
        rep.problems.append(f"{path}: graph has {len(model.functions)} local function(s); inline them before TensorRT")
    for n in g.node:
        rep.ops[n.op_type] = rep.ops.get(n.op_type, 0) + 1
        where = f"{path}: node {n.name or n.output[0]!r} ({n.op_type})"
        if n.domain not in ("", "ai.onnx"):
            rep.problems.append(f"{where}: custom domain {n.domain!r} is not parsed by TensorRT; export standard ops")
            continue
        if n.op_type in trt_ops.NEEDS_PLUGIN:
            rep.plugins.append(trt_ops.NEEDS_PLUGIN[n.op_type])
        if n.op_type not in trt_ops.SUPPORTED:
            note = trt_ops.UNSUPPORTED_NOTES.get(n.op_type, "not in the TensorRT ONNX parser's operator list")
            rep.problems.append(f"{where}: {note}")
            continue
        if n.op_type == "GridSample":
            vi = shapes.get(n.input[0])
            rank = len(vi.type.tensor_type.shape.dim) if vi is not None and vi.type.tensor_type.HasField("shape") else 4
            if rank != 4:
                rep.problems.append(f"{where}: GridSample on a {rank}-D input; TensorRT supports 4-D only")
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            rep.problems.extend(_qdq_problems(n, where, consts, inits))
        if n.op_type == "DequantizeLinear":
            bad = _dq_input_problem(n, where, dtypes)
            if bad:
                rep.problems.append(bad)
        if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and n.input[1] not in consts | dq_consts:
            rep.problems.append(f"{where}: weights {n.input[1]!r} are not an initializer; TensorRT needs constant weights")
        if n.op_type in ("Slice", "Squeeze", "Unsqueeze") and opset >= 13:
            idx = 3 if n.op_type == "Slice" else 1
            if len(n.input) > idx and n.input[idx] and n.input[idx] not in consts:
                rep.problems.append(f"{where}: axes {n.input[idx]!r} are computed at run time; TensorRT needs constant axes")
        if n.op_type == "TopK" and len(n.input) > 1 and n.input[1] not in consts:
            rep.problems.append(f"{where}: K is not a constant; TensorRT needs an initializer K")
    for vi in list(g.input) + list(g.output):
        if vi.name in consts:
            continue
        tt = vi.type.tensor_type
        if tt.elem_type not in trt_ops.IO_DTYPES:
            rep.problems.append(f"{path}: tensor {vi.name!r} has ONNX dtype {tt.elem_type}; use float32/float16")
        for i, d in enumerate(tt.shape.dim):
            if i == 0:
                continue  # the batch axis may be dynamic (an optimisation profile covers it)
            if not d.HasField("dim_value"):
                rep.problems.append(
                    f"{path}: tensor {vi.name!r} axis {i} is dynamic ({d.dim_param or '?'}); only the batch axis may be"
                )
    rep.plugins = sorted(set(rep.plugins))
    return rep
