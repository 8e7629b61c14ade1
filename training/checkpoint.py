"""Run folders and checkpoints: ``run.json``, and one type per checkpoint file, saved atomically with a checksum
and loaded with one-line errors.

``RUN/<method>/checkpoint.pt`` (a finished method) is a :class:`Checkpoint`: ``schema``, ``preset``,
``preprocessing``, ``method``, ``model`` (state dict), ``prototypes`` (list of (C_a, D) float32),
``region_weight``, ``metrics`` (per stage), ``config``, ``train_rows`` and ``data`` (the training dataset folder,
for INT8 calibration); since issue 17 optionally ``region_prototypes``, ``region_terms``, ``roi`` and
``calibration`` (written by ``fsn calibrate`` and at the end of training: training/calibrate.py). The resumable state of a stage lives beside it in ``state.pt`` (``RUN/stage1/state.pt``
for the shared stage 1), a :class:`StageState`.

On disk both are the dict of :meth:`Checkpoint.to_dict` / :meth:`StageState.to_dict` (the same keys as before
this type existed) serialised by ``torch.save``, behind one header line ``FSN-CHECKPOINT sha256=<hex>`` that
holds the sha256 of the bytes after it; the file is written to a temporary name, fsynced and renamed. Files
written before the header existed (a bare ``torch.save`` file) still load, without the checksum check.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import CheckpointError, UsageError
from fashionsearchnet.runtime.roi_settings import RoiChoice
from fashionsearchnet.search.params import RegionTerms, SearchParams
from fashionsearchnet.fileio import atomic_write_bytes, atomic_write_text, fsync_dir
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import Preset
from fashionsearchnet.training.region_head import RegionHeadSpec

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
STATE_NAME = "state.pt"
RUN_JSON = "run.json"
HEADER = b"FSN-CHECKPOINT sha256="
_HEADER_LEN = len(HEADER) + 64 + 1  # the prefix, 64 hex digits, a newline
# checkpoints written before the region weight was stored with the run were scored with 0.3 (the default then)
LEGACY_REGION_WEIGHT = 0.3
_REQUIRED = ("schema", "preset", "preprocessing", "method", "model", "prototypes")


def save_payload(payload: dict[str, Any], path: str | Path) -> None:
    """torch.save ``payload`` to ``path`` behind the checksum header, atomically (a kill never leaves half a file)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, HEADER + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)
    try:  # make the rename durable too
        fsync_dir(path.parent)
    except OSError:  # a file system without directory fsync: the write itself is complete
        pass


def load_payload(path: str | Path) -> dict[str, Any]:
    """The dict stored in a checkpoint/state file; CheckpointError naming the file when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train first with 'fsn train DATA --out RUN'")
    data = path.read_bytes()
    if data.startswith(HEADER):
        expected = data[len(HEADER):_HEADER_LEN - 1].decode("ascii", "replace")
        body = data[_HEADER_LEN:]
        got = hashlib.sha256(body).hexdigest()
        if got != expected:
            raise CheckpointError(f"{path}: sha256 mismatch (header {expected[:12]}..., file {got[:12]}...); the "
                                  f"file was changed or truncated, delete it and retrain")
    else:  # written before the checksum header existed: a bare torch.save file
        body = data
    try:
        obj = torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is a corrupt file
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(e).__name__}); delete it and retrain") from None
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(f"{path}: not a FashionSearchNet checkpoint (no 'format' key)")
    if int(obj["format"]) > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {obj['format']} is newer than this version "
                              f"({CHECKPOINT_FORMAT}); upgrade fashionsearchnet")
    return obj


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a model's state dict (what a checkpoint stores)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def check_schema(trained: Schema, data: Schema, where: str) -> None:
    """CheckpointError when a dataset's schema differs from the one a checkpoint was trained with."""
    diff = trained.difference(data)
    if diff:
        raise CheckpointError(f"{where}: trained on another schema ({diff}); use a dataset with the run's "
                              f"schema.json or retrain on this one")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept RUN/<method>/checkpoint.pt or the RUN/<method> folder."""
    p = Path(path)
    return p / CHECKPOINT_NAME if p.is_dir() else p


@dataclass(eq=False)  # tensors and arrays have no single truth value: compare fields by hand
class Checkpoint:
    """A finished method: everything export, evaluation and the reference extractor need."""

    schema: Schema
    preset: Preset
    preprocessing: Preprocessing
    method: str
    model: dict[str, torch.Tensor]
    prototypes: list[np.ndarray]
    region_weight: float
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    train_rows: int | None = None
    data: str | None = None  # the training dataset folder (absent in older checkpoints)
    whole_map_pool: str = "area"  # no_aam's pooling (model.WHOLE_MAP_POOLS); older checkpoints: "sample"
    # issue 17 (``fsn calibrate`` / the end of training; absent in older checkpoints):
    region_prototypes: dict[str, np.ndarray] = field(default_factory=dict)  # "region:attr" -> (C_attr, D)
    region_terms: dict[str, Any] | None = None  # fsn_region's RegionTerms: weight, primary_weight, scales
    roi: dict[str, Any] | None = None  # RoiChoice.to_dict(): heads and display thresholds / upsampling
    calibration: dict[str, Any] | None = None  # what calibration measured (validation rows, IoUs, retrieval)
    region_head: dict[str, Any] | None = None  # RegionHeadSpec.to_dict() when region heads were fitted
    path: Path | None = None  # where it was loaded from (not stored)

    def to_dict(self) -> dict[str, Any]:
        d = {"format": CHECKPOINT_FORMAT, "schema": self.schema.to_dict(), "preset": self.preset.to_dict(),
             "preprocessing": self.preprocessing.to_dict(), "method": self.method, "model": self.model,
             "prototypes": self.prototypes, "region_weight": self.region_weight, "metrics": self.metrics,
             "config": self.config, "whole_map_pool": self.whole_map_pool}
        if self.train_rows is not None:
            d["train_rows"] = self.train_rows
        if self.data is not None:
            d["data"] = self.data
        if self.region_prototypes:
            d["region_prototypes"] = {k: np.asarray(v, np.float32) for k, v in self.region_prototypes.items()}
        for key in ("region_terms", "roi", "calibration", "region_head"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], file: Path) -> "Checkpoint":
        for key in _REQUIRED:
            if key not in d:
                raise CheckpointError(f"{file}: field {key!r} missing; this is not a finished run (resume training)")
        return cls(
            schema=Schema.from_dict(d["schema"], source=f"{file}:schema"), preset=Preset.from_dict(d["preset"]),
            preprocessing=Preprocessing.from_dict(d["preprocessing"]), method=d["method"], model=d["model"],
            prototypes=[np.asarray(p, np.float32) for p in d["prototypes"]],
            region_weight=float(d.get("region_weight", LEGACY_REGION_WEIGHT)), metrics=d.get("metrics", {}),
            config=d.get("config", {}), train_rows=d.get("train_rows"), data=d.get("data"),
            whole_map_pool=d.get("whole_map_pool", "sample"),
            region_prototypes={k: np.asarray(v, np.float32) for k, v in d.get("region_prototypes", {}).items()},
            region_terms=d.get("region_terms"), roi=d.get("roi"), calibration=d.get("calibration"),
            region_head=d.get("region_head"), path=file)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (RUN/<method>/checkpoint.pt) atomically, with its checksum; returns the path."""
        save_payload(self.to_dict(), path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        """Read RUN/<method>/checkpoint.pt (or the RUN/<method> folder); CheckpointError in one line when it cannot."""
        file = resolve_checkpoint(path)
        return cls.from_dict(load_payload(file), file)

    @classmethod
    def untrained(cls, schema: Schema, preset: Preset, method: str, seed: int, region_weight: float,
                  **fields: Any) -> "Checkpoint":
        """A randomly initialised model (torch seeded with ``seed``) with random prototypes: for tests and speed
        benchmarks, where the weights do not matter."""
        torch.manual_seed(seed)
        model = FashionSearchNet(schema, preset, method).eval()
        rng = np.random.default_rng(seed)
        protos = [rng.normal(size=(len(a.values), preset.rep_dim)).astype(np.float32) for a in schema.attributes]
        return cls(schema, preset, Preprocessing(preset.input_size), method, model.state_dict(), protos,
                   region_weight, **fields)

    def build_model(self, device: str = "cpu") -> FashionSearchNet:
        """The network with the stored weights, in eval mode on ``device``."""
        try:
            spec = RegionHeadSpec.from_dict(self.region_head)
        except CheckpointError as e:
            raise CheckpointError(f"{self.path}: {e}; run 'fsn calibrate' on the run again") from None
        model = FashionSearchNet(self.schema, self.preset, self.method, self.whole_map_pool, spec)
        try:
            model.load_state_dict(self.model)
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"{self.path}: model weights do not fit the stored preset ({first})") from None
        return model.to(device).eval()

    @property
    def roi_choice(self) -> RoiChoice:
        """The ROI step's heads and display boxes (``runtime/roi_settings.py``; uncalibrated: the paper's 0.2)."""
        try:
            return RoiChoice.from_dict(self.roi)
        except UsageError as e:
            raise CheckpointError(f"{self.path}: field {e}; run 'fsn calibrate' on the run again") from None

    def search_params(self, region_weight: float | None = None) -> SearchParams:
        """What a search of this method needs (prototypes, lam, W, region prototypes and terms): the same
        arrays ``fsn export`` writes to params.npz."""
        model = self.model
        terms = None
        if self.region_terms is not None:
            t = self.region_terms
            terms = RegionTerms(float(t["weight"]), float(t["primary_weight"]), float(t["global_scale"]),
                                np.asarray(t["pair_scales"], np.float64))
        try:
            return SearchParams(self.schema, self.prototypes, model["lam"].detach().cpu().numpy(),
                                model["W"].detach().cpu().numpy(),
                                self.region_weight if region_weight is None else region_weight,
                                dict(self.region_prototypes), terms)
        except UsageError as e:
            raise CheckpointError(f"{self.path}: {e}; run 'fsn calibrate' on the run again") from None

    def meta(self) -> dict[str, Any]:
        """What :func:`load_run` returns beside the model."""
        return {"path": self.path, "schema": self.schema, "preset": self.preset, "preprocessing": self.preprocessing,
                "method": self.method, "prototypes": self.prototypes, "region_weight": self.region_weight,
                "metrics": self.metrics, "config": self.config, "data": self.data,
                "region_prototypes": dict(self.region_prototypes), "region_terms": self.region_terms,
                "roi": self.roi_choice, "calibration": self.calibration, "search_params": self.search_params()}


@dataclass(eq=False)
class StageState:
    """The resumable state of one training stage: where it stopped, the weights, the optimiser, running sums."""

    stage: int
    epoch: int
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    running: dict[str, float]
    metrics: list[dict[str, float]]
    method: str | None = None  # stages 2 and 3 (stage 1 is shared by every method)
    stage2_metrics: list[dict[str, float]] | None = None  # stage 3: so that a resumed run still reports them

    def to_dict(self) -> dict[str, Any]:
        d = {"format": CHECKPOINT_FORMAT, "stage": self.stage, "epoch": self.epoch, "step": self.step,
             "model": self.model, "optimizer": self.optimizer, "running": self.running, "metrics": self.metrics}
        if self.method is not None:
            d["method"] = self.method
        if self.stage2_metrics is not None:
            d["stage2_metrics"] = self.stage2_metrics
        return d

    def save(self, path: str | Path) -> None:
        save_payload(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "StageState":
        path = Path(path)
        d = load_payload(path)
        for key in ("stage", "epoch", "step", "model", "optimizer"):
            if key not in d:
                raise CheckpointError(f"{path}: field {key!r} missing; not a training state file (delete it to "
                                      f"restart the stage)")
        return cls(stage=int(d["stage"]), epoch=int(d["epoch"]), step=int(d["step"]), model=d["model"],
                   optimizer=d["optimizer"], running=dict(d.get("running", {})), metrics=list(d.get("metrics", [])),
                   method=d.get("method"), stage2_metrics=d.get("stage2_metrics"))


def load_run(path: str | Path, device: str = "cpu") -> tuple[FashionSearchNet, dict[str, Any]]:
    """Load a trained method: (model in eval mode, meta with schema/preset/preprocessing/method/prototypes...)."""
    ck = Checkpoint.load(path)
    return ck.build_model(device), ck.meta()


def check_run_folder(out: Path, schema: Schema, fingerprint: dict[str, Any]) -> None:
    """Write ``out/run.json`` (schema + the settings a resumed run must keep), or refuse a run folder whose
    run.json records other settings or another schema."""
    path = out / RUN_JSON
    mine = {"schema": schema.to_dict(), "config": fingerprint}
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(mine, indent=2))
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt run description; delete the run folder and retrain") from None
    # runs from before --global-negatives existed used the paper's random negatives
    old_cfg = {"global_negatives": "random", **old.get("config", {})}
    if old_cfg != mine["config"]:
        diff = [k for k in mine["config"] if old_cfg.get(k) != mine["config"][k]]
        raise CheckpointError(f"{out}: run folder was trained with other settings ({', '.join(diff)}); "
                              f"use a new --out or the same settings to resume")
    diff_s = Schema.from_dict(old["schema"], source=str(path)).difference(schema)
    if diff_s:
        raise CheckpointError(f"{out}: run folder holds a run of another schema ({diff_s}); use a new --out")
