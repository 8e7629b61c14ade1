"""``fsn export RUN --out BUNDLE [--precision fp32|fp16|int8] [--calibration DATA] [--calibration-images 256]
[--method fsn]``."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (RUN/<method>/checkpoint.pt) or a checkpoint file")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write (replaced atomically)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="fp16 is baked into the ONNX (what TensorRT 11 needs); int8: ONNX Runtime static "
                        "quantisation (QDQ) of the backbone, calibrated on training images; default fp32")
    p.add_argument("--calibration", metavar="DATA", default=None,
                   help="int8: dataset folder whose train split calibrates (default: the folder the run was trained on)")
    p.add_argument("--calibration-images", type=int, default=256, metavar="N",
                   help="int8: number of training images to calibrate on (default 256)")
    p.add_argument("--method", default="fsn", help="which trained method of the run to export (default fsn)")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.export.exporter import export_run

    m = export_run(args.run, args.out, precision=args.precision, method=args.method,
                   calibration=args.calibration, calibration_images=args.calibration_images)
    errs = ", ".join(f"{k} {v:.1e}" for k, v in m["parity"]["errors"].items())
    trt = "ok" if all(g["ok"] for g in m["tensorrt"].values()) else "NOT buildable (see manifest.json 'tensorrt')"
    log.info("bundle %s: method %s, %s; parity vs PyTorch (tolerance %.0e): %s; TensorRT operator check: %s",
             args.out, m["method"], m["precision"], m["parity"]["tolerance"], errs, trt)
    if m["precision"] == "int8":
        c = m["quantization"]["calibration"]
        log.info("int8: calibrated on %d training images of %s; agreement with fp32 PyTorch: AAM top class %.3f, "
                 "region relevant classes %.3f (maps are compared where these agree)", c["images"], c["folder"],
                 m["parity"]["aam_top_class_agreement"], m["parity"].get("region_class_set_agreement", float("nan")))
    return 0
