"""INT8 bundles: ONNX Runtime static quantisation (QDQ) of the ``backbone`` graph, calibrated on the run's
training images preprocessed exactly as the runtime does (``runtime/images.load_rgb`` + ``Preprocessing``).

What is quantised (measured on the edge preset, batch 1, 1 ORT thread, 2-core machine under load):
* backbone Conv nodes only, weights per output channel, activations per tensor, both symmetric int8
  (zero point 0: what TensorRT's explicit-quantisation Q/DQ needs): backbone 4.3 -> 2.3 ms. Quantising every
  operator (softmax, einsum, gemm of the AAM part) was slower (3.9 ms) and flips the AAMs' top class on
  near-ties; the classifier, AAMs and region maps stay float32 on the int8 conv features.
* weights in a 7-bit range (``reduce_range``): on x86 CPUs without VNNI (AVX2 only, e.g. the AMD EPYC CI machine)
  ONNX Runtime's int8 convolution sums pairs of u8 x s8 products in int16 (VPMADDUBSW), which saturates with
  full 8-bit weights: conv5 parity error 2.1e-01 (over the 0.1 tolerance) vs 4.9e-02 with 7-bit weights on
  the tiny test model. A bundle is exported once and run on kiosks of unknown CPU, so the portable range is
  the default.
* biases stay float32 (ONNX Runtime extra option ``QuantizeBias=False``; its default quantises each bias to a
  DequantizeLinear of int32, which TensorRT's ONNX parser rejects; ``export/trt_compat.py`` flags one).
* heads stay float32: quantised they took 0.35-0.39 ms vs 0.38 ms float (no gain, extra error).
Calibration: MinMax over ``count`` training images (a fixed-seed sample of the ``train`` split); parity
images are other training images when there are any left (see ``export/parity.py`` for the int8 tolerance).
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import DatasetError, ImageError, UsageError

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_IMAGES = 256
CALIBRATION_SEED = 0
PARITY_IMAGES = 8  # held-out training images for the int8 parity check (batches 1 and 3 need 4)
CALIB_BATCH = 16
OPS_TO_QUANTIZE = ("Conv",)
SETTINGS = {"format": "QDQ", "graphs": ["backbone"], "ops": list(OPS_TO_QUANTIZE),
            "weights": "int8 per-channel symmetric, 7-bit range (reduce_range)",
            "activations": "int8 per-tensor symmetric", "biases": "float32 (QuantizeBias=False)",
            "calibrate_method": "MinMax"}


@dataclass
class CalibrationSet:
    """Preprocessed calibration images (N,3,S,S) float32, held-out parity images, and what they are."""

    images: np.ndarray
    parity_images: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def load_calibration(folder: str | Path, schema: Schema, pre: Preprocessing,
                     count: int = DEFAULT_CALIBRATION_IMAGES, seed: int = CALIBRATION_SEED) -> CalibrationSet:
    """``count`` training images of the dataset ``folder`` (fixed-seed sample) preprocessed as the runtime does.

    Raises DatasetError (one line, naming the folder) when the folder is no dataset, its schema differs from
    the run's, its train split is empty or an image does not decode.
    """
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.runtime.images import load_rgb

    if count < 1:
        raise UsageError(f"--calibration-images {count}: must be >= 1 (default {DEFAULT_CALIBRATION_IMAGES})")
    try:
        ds = load_dataset(folder)
    except DatasetError as e:
        raise DatasetError(f"--calibration: {e}") from None
    diff = schema.difference(ds.schema, regions=False)
    if diff:
        raise DatasetError(f"--calibration {ds.root}: another schema than the run's ({diff}); pass the dataset "
                           "folder the run was trained on")
    train = np.asarray(ds.indices("train"))
    if len(train) == 0:
        raise DatasetError(f"--calibration {ds.root}: the train split is empty; INT8 calibrates on training images, "
                           "pass the folder the run was trained on")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(train)
    calib_rows = np.sort(perm[:count])
    rest = perm[count:]
    parity_rows = np.sort(rest[:PARITY_IMAGES]) if len(rest) else calib_rows[:PARITY_IMAGES]

    def load(rows: np.ndarray) -> np.ndarray:
        x = np.empty((len(rows), 3, pre.size, pre.size), np.float32)
        for i, r in enumerate(rows):
            try:
                x[i] = pre(load_rgb(ds.images[r]))
            except ImageError as e:
                raise DatasetError(f"--calibration {ds.root}: row {int(r)}: {e}") from None
        return x

    names = "\n".join(str(Path(ds.images[r]).relative_to(ds.root)) if Path(ds.images[r]).is_relative_to(ds.root)
                      else str(ds.images[r]) for r in calib_rows)
    info = {"folder": str(ds.root), "split": "train", "images": int(len(calib_rows)),
            "train_images": int(len(train)), "seed": int(seed),
            "images_sha256": hashlib.sha256(names.encode("utf-8")).hexdigest(),
            "parity_images": int(len(parity_rows)), "parity_held_out": bool(len(rest) > 0)}
    log.info("calibration: %d of %d training images of %s", len(calib_rows), len(train), ds.root)
    return CalibrationSet(load(calib_rows), load(parity_rows), info)


def _reader(images: np.ndarray, input_name: str, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = (
                {input_name: images[i:i + batch]} for i in range(0, len(images), batch))

        def get_next(self):
            return next(self._it, None)

    return _Reader()


def quantize_backbone(src: str | Path, dst: str | Path, images: np.ndarray, batch: int = CALIB_BATCH) -> dict[str, Any]:
    """Quantise the fp32 backbone ONNX ``src`` into ``dst`` (QDQ, see module docstring); returns the settings."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if images.ndim != 4 or len(images) == 0:
        raise UsageError(f"calibration images: expected a non-empty (N,3,S,S) array, got shape {images.shape}")
    with tempfile.TemporaryDirectory(prefix="fsn-int8-") as tmp:
        pre = Path(tmp) / "backbone.pre.onnx"
        # shape inference + constant folding / BatchNorm folding into the convs, standard ONNX ops only
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        quantize_static(str(pre), str(dst), _reader(images, "images", batch), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(OPS_TO_QUANTIZE), per_channel=True, reduce_range=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "QuantizeBias": False})
    log.info("quantised %s -> %s on %d calibration images", src, dst, len(images))
    return dict(SETTINGS)
