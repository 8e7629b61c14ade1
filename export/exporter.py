"""``fsn export``: a trained run (RUN/<method>/checkpoint.pt, the method folder or the file) -> a bundle."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from fashionsearchnet.errors import CheckpointError
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


def export_run(run: str | Path, out: str | Path, precision: str = "fp32", method: str = "fsn") -> dict[str, Any]:
    """Load the run's ``method`` checkpoint and write the bundle ``out``; returns the manifest."""
    from fashionsearchnet.export.bundle_writer import write_bundle
    from fashionsearchnet.training.checkpoint import load_run

    ckpt = resolve_run(run, method)
    model, meta = load_run(ckpt)
    params = {f"prototypes_{a}": p for a, p in enumerate(meta["prototypes"])}
    params["lam"] = model.lam.detach().cpu().numpy()
    params["W"] = model.W.detach().cpu().numpy()
    run_info = {
        "checkpoint": str(Path(ckpt).resolve()),
        "checkpoint_sha256": sha256_file(ckpt),
        "method": meta["method"],
        "preset": meta["preset"].to_dict(),
        "metrics": _jsonable(meta.get("metrics", {})),
    }
    return write_bundle(model, meta["schema"], meta["preprocessing"], params, out, method=meta["method"],
                        precision=precision, run_info=run_info, region_weight=meta["region_weight"])
