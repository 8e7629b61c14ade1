"""``fsn export``: a trained run (RUN/<method>/checkpoint.pt, the method folder or the file) -> a bundle."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from fashionsearchnet.errors import CheckpointError, UsageError
from fashionsearchnet.fileio import sha256_file

log = logging.getLogger(__name__)


def resolve_run(run: str | Path, method: str = "fsn") -> Path:
    """RUN folder, RUN/<method> folder or checkpoint file -> the checkpoint file (CheckpointError if absent)."""
    p = Path(run)
    method = {"fsn_region": "fsn"}.get(method, method)  # the same trained model, searched with region awareness
    for cand in (p, p / method / "checkpoint.pt", p / "checkpoint.pt"):
        if cand.is_file():
            return cand
    raise CheckpointError(
        f"{p}: no checkpoint (looked for {p / method / 'checkpoint.pt'} and {p / 'checkpoint.pt'}); "
        f"train it first (fsn train DATA --out {p}) or pass --method"
    )


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))


def calibration_folder(ckpt: Path, meta: dict[str, Any], calibration: str | Path | None) -> Path:
    """The dataset folder INT8 calibrates on: ``calibration`` if given, else the one the run recorded."""
    if calibration is not None:
        return Path(calibration)
    data = meta.get("data")
    if not data:
        raise CheckpointError(f"{ckpt}: records no training dataset folder (trained before it was stored); "
                              "pass --calibration DATA, the folder the run was trained on")
    return Path(data)


def export_run(run: str | Path, out: str | Path, precision: str = "fp32", method: str = "fsn",
               calibration: str | Path | None = None,
               calibration_images: int | None = None) -> dict[str, Any]:
    """Load the run's ``method`` checkpoint and write the bundle ``out``; returns the manifest.

    ``precision="int8"`` calibrates on ``calibration_images`` training images of ``calibration`` (default:
    the dataset folder recorded in the checkpoint).
    """
    from fashionsearchnet.export.bundle_writer import write_bundle
    from fashionsearchnet.training.checkpoint import Checkpoint

    from fashionsearchnet.export.quantize import DEFAULT_CALIBRATION_IMAGES, load_calibration

    if precision not in ("fp32", "fp16", "int8"):
        raise UsageError(f"--precision {precision!r}: valid: fp32, fp16, int8")
    ckpt = resolve_run(run, method)
    ck = Checkpoint.load(ckpt)
    model, meta = ck.build_model(), ck.meta()
    calib = None
    if precision == "int8":
        calib = load_calibration(calibration_folder(ckpt, meta, calibration), meta["schema"], meta["preprocessing"],
                                 calibration_images or DEFAULT_CALIBRATION_IMAGES)
    params = ck.search_params().arrays()  # prototypes, lam, W, region prototypes and terms (when calibrated)
    run_info = {
        "checkpoint": str(Path(ckpt).resolve()),
        "checkpoint_sha256": sha256_file(ckpt),
        "method": meta["method"],
        "preset": meta["preset"].to_dict(),
        "metrics": _jsonable(meta.get("metrics", {})),
    }
    if ck.region_head is not None:
        run_info["region_head"] = dict(ck.region_head)  # which region heads the heads graph holds (informative)
    return write_bundle(model, meta["schema"], meta["preprocessing"], params, out, method=meta["method"],
                        precision=precision, run_info=run_info, region_weight=meta["region_weight"],
                        calibration=calib, roi=ck.roi)
