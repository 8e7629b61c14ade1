"""Run folders and checkpoints: atomic writes, loading a trained method, schema checks.

``RUN/<method>/checkpoint.pt`` (final) holds: ``format``, ``schema`` (dict), ``preset`` (dict),
``preprocessing`` (dict), ``method``, ``model`` (state dict), ``prototypes`` (list of (C_a, D) float32),
``region_weight``, ``metrics`` (per stage), ``config``, ``data`` (the training dataset folder, for INT8
calibration). Resumable state lives beside it in ``state.pt``
(``RUN/stage1/state.pt`` for the shared stage 1).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import CheckpointError
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import Preset

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
STATE_NAME = "state.pt"


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to ``path`` via a temporary file + fsync + os.replace (a kill never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load_file(path: str | Path) -> dict[str, Any]:
    """torch.load a checkpoint/state file; CheckpointError naming the file when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train first with 'fsn train DATA --out RUN'")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is a corrupt file
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(e).__name__}); delete it and retrain") from None
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(f"{path}: not a FashionSearchNet checkpoint (no 'format' key)")
    if int(obj["format"]) > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {obj['format']} is newer than this version "
                              f"({CHECKPOINT_FORMAT}); upgrade fashionsearchnet")
    return obj


def schema_mismatch(a: Schema, b: Schema) -> str | None:
    """First difference between two schemas in words, or None when they are the same."""
    if a.names != b.names:
        return f"attributes {list(a.names)} vs {list(b.names)}"
    for x, y in zip(a.attributes, b.attributes):
        if x.values != y.values:
            extra = [v for v in y.values if v not in x.values]
            what = f"values {extra} unknown to the checkpoint" if extra else f"values {list(x.values)} vs {list(y.values)}"
            return f"attribute {x.name!r}: {what}"
    if a.region_pairs != b.region_pairs or [r.subtract for r in a.regions] != [r.subtract for r in b.regions]:
        return f"regions {[r.name for r in a.regions]} vs {[r.name for r in b.regions]} (or their linkage)"
    return None


def check_schema(trained: Schema, data: Schema, where: str) -> None:
    """CheckpointError when a dataset's schema differs from the one a checkpoint was trained with."""
    diff = schema_mismatch(trained, data)
    if diff:
        raise CheckpointError(f"{where}: trained on another schema ({diff}); use a dataset with the run's "
                              f"schema.json or retrain on this one")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept RUN/<method>/checkpoint.pt or the RUN/<method> folder."""
    p = Path(path)
    return p / CHECKPOINT_NAME if p.is_dir() else p


def load_run(path: str | Path, device: str = "cpu") -> tuple[FashionSearchNet, dict[str, Any]]:
    """Load a trained method: (model in eval mode, meta with schema/preset/preprocessing/method/prototypes...)."""
    file = resolve_checkpoint(path)
    ck = load_file(file)
    for key in ("schema", "preset", "preprocessing", "method", "model", "prototypes"):
        if key not in ck:
            raise CheckpointError(f"{file}: field {key!r} missing; this is not a finished run (resume training)")
    schema = Schema.from_dict(ck["schema"], source=f"{file}:schema")
    preset = Preset.from_dict(ck["preset"])
    model = FashionSearchNet(schema, preset, ck["method"])
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{file}: model weights do not fit the stored preset ({first})") from None
    model.to(device).eval()
    meta = {
        "path": file,
        "schema": schema,
        "preset": preset,
        "preprocessing": Preprocessing.from_dict(ck["preprocessing"]),
        "method": ck["method"],
        "prototypes": [np.asarray(p, np.float32) for p in ck["prototypes"]],
        "region_weight": float(ck.get("region_weight", 0.3)),
        "metrics": ck.get("metrics", {}),
        "config": ck.get("config", {}),
        "data": ck.get("data"),  # the training dataset folder (absent in older checkpoints)
    }
    return model, meta
