"""Data: ONNX operators the TensorRT ONNX parser accepts, with the restrictions that matter for our graphs.

Source: onnx/onnx-tensorrt ``docs/operators.md`` (TensorRT 8.5 support matrix, commit 6d0ab7be, the release
that added GridSample and RoiAlign; every operator it marks ``Y`` is still supported by TensorRT 10.x), and the
TensorRT 10.0 note "supports operators in the inclusive range of opset 9 to opset 20". Engineering notes:
RoiAlign goes through the ROIAlign_TRT plugin (load the plugin library), GridSample is 4-D only, MaxRoiPool is
not supported, TensorRT 11 networks are strongly typed (FP16 must be in the ONNX itself).
"""
from __future__ import annotations

SOURCE = "onnx/onnx-tensorrt docs/operators.md (TensorRT 8.5 matrix, commit 6d0ab7be) + TensorRT 10.0 opset range"
OPSET_MIN, OPSET_MAX = 9, 20

SUPPORTED: frozenset[str] = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Operators the parser rejects outright (subset of the matrix's "N" rows worth naming in an error).
UNSUPPORTED_NOTES: dict[str, str] = {
    "MaxRoiPool": "not supported by the TensorRT ONNX parser; pool with GridSample (crop_and_resize) instead",
    "LayerNormalization": "not in the TensorRT 8.5 parser (10.x adds it); decompose it for older devices",
    "Hardmax": "not supported; use ArgMax",
    "IsInf": "not supported",
    "Unique": "not supported",
    "Compress": "not supported",
}

# Operators accepted only through a plugin library that must be loaded before parsing.
NEEDS_PLUGIN: dict[str, str] = {"RoiAlign": "ROIAlign_TRT (load libnvinfer_plugin / trt.init_libnvinfer_plugins)"}

# Only these ONNX dtypes may appear on graph inputs/outputs for the engines we build (TensorProto enums).
IO_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64"}

# Input dtypes TensorRT's DequantizeLinear takes (TensorProto enums). TensorRT quantises symmetrically to INT8,
# INT4 (weights), FP8E4M3 and FP4E2M1 ("Working with Quantized Types", TensorRT 10/11 docs); UINT8 "cannot be
# used to represent quantized floating-point values" (tensorrt.DataType), and an INT32 input (ONNX Runtime's
# quantised bias, QuantizeBias=True) is rejected by the parser.
DQ_INPUT_DTYPES = {3: "int8", 22: "int4", 17: "float8e4m3fn", 23: "float4e2m1"}
ONNX_DTYPE_NAMES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 16: "bfloat16",
                    17: "float8e4m3fn", 22: "int4", 23: "float4e2m1"}
