"""Write a model bundle atomically: export both graphs, check parity against PyTorch (ParityError beyond
tolerance), check TensorRT operator support, stamp metadata into the ONNX files, save params.npz, then
manifest.json with every file's sha256; all in a temporary folder renamed into place at the end."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import DEFAULT_REGION_WEIGHT, REGION_PREFIX, SCALES_KEY, TERMS_KEY
from fashionsearchnet.export import graphs as G
from fashionsearchnet.export.parity import check_parity
from fashionsearchnet.export.quantize import CalibrationSet, quantize_backbone
from fashionsearchnet.export.trt_compat import check_graph
from fashionsearchnet.fileio import sha256_file
from fashionsearchnet.runtime.bundle import BUNDLE_FORMAT, FORMAT_VERSION, MANIFEST, PARAMS

log = logging.getLogger(__name__)

ROI = {"aam_threshold": 0.2, "region_class_threshold": 0.1, "connectivity": 8, "largest_component": True}


def _check_params(params: dict[str, np.ndarray], schema: Schema) -> dict[str, np.ndarray]:
    A = len(schema.attributes)
    need = [f"prototypes_{a}" for a in range(A)] + ["lam", "W"]
    missing = [k for k in need if k not in params]
    if missing:
        raise UsageError(f"export params lack {', '.join(missing)}; the run has no prototypes/global parameters")
    out = {k: np.asarray(params[k], dtype=np.float32) for k in need}
    # issue 17: region prototypes (float32) and fsn_region's calibrated terms (float64), when the run has them
    out.update({k: np.asarray(v, dtype=np.float32) for k, v in params.items() if k.startswith(REGION_PREFIX)})
    out.update({k: np.asarray(params[k], dtype=np.float64) for k in (TERMS_KEY, SCALES_KEY) if k in params})
    for k, v in out.items():
        if not np.all(np.isfinite(v)):
            raise UsageError(f"export params: {k} has NaN/inf values; retrain or recompute prototypes")
    return out


def write_bundle(model: torch.nn.Module, schema: Schema, preprocessing: Preprocessing,
                 params: dict[str, np.ndarray], out: str | Path, method: str = "fsn", precision: str = "fp32",
                 run_info: dict[str, Any] | None = None, region_weight: float = DEFAULT_REGION_WEIGHT,
                 calibration: CalibrationSet | None = None, roi: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export ``model`` to the bundle folder ``out`` (replaced atomically); returns the manifest.

    ``roi``: a calibrated run's ``RoiChoice.to_dict()`` (per-map thresholds, upsampling, heads boxes), added to
    the manifest's ``roi`` object; None keeps the paper's ROI step (and the manifest as before issue 17).

    ``precision="int8"`` needs ``calibration`` (``export/quantize.load_calibration``): the fp32 backbone is
    quantised (QDQ) on its images and parity runs on its held-out images with the int8 tolerance.
    """
    out = Path(out)
    if precision == "int8" and calibration is None:
        raise UsageError("--precision int8 needs calibration images (--calibration DATA, the run's training folder)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise UsageError(f"--out {out}: exists and is not a bundle folder; choose a new or empty folder")
    params = _check_params(params, schema)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        quant = None
        if precision == "int8":
            paths = G.export_graphs(model, preprocessing.size, tmp, "fp32")
            fp32_backbone = paths["backbone"].with_name("backbone.fp32.onnx")
            os.replace(paths["backbone"], fp32_backbone)
            quant = quantize_backbone(fp32_backbone, paths["backbone"], calibration.images)
            fp32_backbone.unlink()
            parity = check_parity(model, paths, preprocessing.size, precision, images=calibration.parity_images)
        else:
            paths = G.export_graphs(model, preprocessing.size, tmp, precision)
            parity = check_parity(model, paths, preprocessing.size, precision)
        trt = {}
        for name, p in paths.items():
            rep = check_graph(p)
            trt[name] = {"ok": rep.ok, "problems": rep.problems, "plugins": rep.plugins}
            if not rep.ok:
                log.warning("%s will not build on TensorRT: %s", p.name, "; ".join(rep.problems))
        with torch.no_grad():
            conv5, probs, aams, regions = model.eval().backbone(torch.zeros(1, 3, preprocessing.size, preprocessing.size))
        shapes = {"conv5": list(conv5.shape[1:]), "probs": [int(probs.shape[1])], "aams": list(aams.shape[1:]),
                  "region_maps": list(regions.shape[1:]), "rep_dim": int(params["prototypes_0"].shape[1]),
                  "global_dim": int(params["W"].shape[2])}
        meta = {
            "format": BUNDLE_FORMAT,
            "format_version": FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "method": method,
            "precision": precision,
            "opset": G.OPSET,
            "schema": schema.to_dict(),
            "region_pairs": [list(p) for p in schema.region_pairs],
            "preprocessing": preprocessing.to_dict(),
            "roi": {**ROI, **(roi or {})},
            "region_weight": float(region_weight),
            "shapes": shapes,
            "run": dict(run_info or {}),
        }
        if precision == "int8":
            meta["quantization"] = {**quant, "calibration": dict(calibration.info)}
        props = {f"fsn.{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in meta.items()}
        for name, p in paths.items():
            G.set_metadata(p, {**props, "fsn.graph": name})
        np.savez(tmp / PARAMS, **params)
        graphs = {
            "backbone": {"file": paths["backbone"].name, "inputs": list(G.BACKBONE_IN), "outputs": list(G.BACKBONE_OUT)},
            "heads": {"file": paths["heads"].name, "inputs": list(G.HEADS_IN), "outputs": list(G.HEADS_OUT)},
        }
        files = {f: sha256_file(tmp / f) for f in (paths["backbone"].name, paths["heads"].name, PARAMS)}
        manifest = {**meta, "graphs": graphs, "parity": parity, "tensorrt": trt, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False), encoding="utf-8")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote bundle %s (%s, %s)", out, method, precision)
    return manifest


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is renamed aside first and removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
