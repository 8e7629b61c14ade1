"""The three-stage schedule of section 3 for each method, resumable, seeded.

Stage 1 (L_C) is shared by every method of one command (same initialisation for a fair comparison;
``attribute`` is the stage-1 model itself). Stage 2 (``fsn``, ``no_aam``): L_C + L_T + L_TC; ``no_aam`` pools the
whole conv5 map instead of the AAM box. Stage 3: L_G on lam and W only, over attribute representations computed
once (frozen, eval mode). Prototypes: mean fc10_a per value (train split). The losses are in
:mod:`stage_losses`, the loop (seeded batches, periodic state, resume) in :mod:`loop`.

Optimiser: SGD, lr 0.01 as the paper, momentum 0.9 and weight decay 5e-4 (the paper does not give them; these
are the AlexNet defaults; no weight decay on lam and W in stage 3).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.errors import TrainingError
from fashionsearchnet.training.checkpoint import (CHECKPOINT_NAME, STATE_NAME, Checkpoint, StageState,
                                                  check_run_folder, state_dict_cpu)
from fashionsearchnet.training.config import TrainConfig
from fashionsearchnet.training.distributed import (DDPLoss, DistContext, ShardedBatches, average_buffers, broadcast,
                                                   gather_array, gather_cat, gather_rows, shard_dropout)
from fashionsearchnet.training.extract import extract_arrays, load_resized, to_tensor
from fashionsearchnet.training.loop import Bars, StageLoop, StageLoss, no_bar
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import Preset, get_preset
from fashionsearchnet.training.prototypes import compute_prototypes
from fashionsearchnet.training.seeding import SeededBatches, seed_all
from fashionsearchnet.training.stage_losses import ClassificationLoss, GlobalTripletLoss, RegionTripletLoss

log = logging.getLogger(__name__)


class Trainer:
    """Trains the requested methods on a dataset into a run folder (see module docstring)."""

    def __init__(self, dataset: Dataset, out: str | Path, cfg: TrainConfig, bars: Bars | None = None,
                 dist: DistContext | None = None):
        self.ds, self.out, self.cfg = dataset, Path(out), cfg
        self.dist = dist if dist is not None and dist.world > 1 else None  # None: one process
        self.main = self.dist is None or self.dist.is_main
        self.bars = (bars or no_bar) if self.main else no_bar
        self.preset: Preset = get_preset(cfg.preset)
        self.pre = Preprocessing(self.preset.input_size)
        self.schema = dataset.schema
        self.device = torch.device(cfg.device)
        self.train_rows = dataset.indices("train")
        if len(self.train_rows) < 2:
            raise TrainingError(
                f"{dataset.root}: the training split has {len(self.train_rows)} row(s); at least 2 rows need "
                f"split=train in attributes.csv (or leave the split column out for an automatic 80/15/5 split)")
        self.labels = dataset.labels[self.train_rows].astype(np.int64)
        if (self.labels < 0).all():
            raise TrainingError(f"{dataset.root}: every attribute label of the training split is unknown; "
                                f"fill in the attribute columns of attributes.csv")
        self.images: np.ndarray | None = None
        self.gather = gather_cat if self.dist else (lambda t: t)
        self.gather_rows = gather_rows if self.dist else (lambda r: r)

    # ---- one writer (rank 0), every process reads what it saw --------------------------------------
    def _load_state(self, path: Path) -> StageState | None:
        state = StageState.load(path) if self.main and path.is_file() else None
        return broadcast(state) if self.dist else state

    def _exists(self, path: Path) -> bool:
        found = path.is_file() if self.main else False
        return bool(broadcast(found)) if self.dist else found

    # ---- data and models -------------------------------------------------------------------------
    def _images(self) -> np.ndarray:
        if self.images is None:
            with self.bars(len(self.train_rows), "loading training images") as adv:
                self.images = load_resized(self.ds, self.train_rows, self.pre, adv)
        return self.images

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (normalised, on the device) and labels of training rows ``rows``."""
        x = to_tensor(self._images()[rows], self.pre, self.device)
        y = torch.from_numpy(self.labels[rows]).to(self.device)
        return x, y

    def new_model(self, method: str) -> FashionSearchNet:
        """A freshly initialised model, the same for every method of a seed."""
        seed_all(self.cfg.seed, 0)
        model = FashionSearchNet(self.schema, self.preset, method)
        if self.cfg.backbone_weights:
            model.load_backbone_weights(self.cfg.backbone_weights)
        return self._placed(model)

    def _placed(self, model: FashionSearchNet) -> FashionSearchNet:
        """On the device; data-parallel: the global batch's dropout masks, and on CUDA SyncBatchNorm (global batch
        statistics; torch has none on CPU)."""
        if self.dist is not None:
            shard_dropout(model)  # each process applies its rows of the global batch's dropout mask
        if self.dist is not None and self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model.to(self.device)

    def reps_and_prototypes(self, model: FashionSearchNet) -> tuple[np.ndarray, list[np.ndarray]]:
        """Attribute representations of the training rows (eval mode) and the prototypes computed from them."""
        images = self._images()
        if self.dist is not None:  # each process its contiguous share, gathered in order
            images = np.array_split(images, self.dist.world)[self.dist.rank]
        with self.bars(len(images), f"{model.method}: attribute representations") as adv:
            reps = extract_arrays(model, images, self.pre, device=str(self.device), progress=adv)["attr_reps"]
        if self.dist is not None:
            reps = gather_array(reps, self.device)
        return reps, compute_prototypes(reps, self.labels, model.num_classes)

    # ---- stages ----------------------------------------------------------------------------------
    def _run_stage(self, number: int, model: FashionSearchNet, loss: StageLoss, params: list[torch.nn.Parameter],
                   path: Path, batch: int, resume: StageState | None, **state_fields: Any) -> list[dict]:
        cfg = self.cfg
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay if number < 3 else 0.0)
        sampler: Any = SeededBatches(len(self.train_rows), batch, cfg.seed, number)
        step_loss: Any = loss
        if self.dist is not None:
            sampler = ShardedBatches(sampler, self.dist.rank, self.dist.world)
            step_loss = DDPLoss(model, loss, self.device)
        loop = StageLoop(number, path, model, opt, step_loss, sampler, cfg.epochs[number - 1], cfg.seed,
                         cfg.checkpoint_every_s, self.bars, state_fields, writes_state=self.main,
                         processes=self.dist.world if self.dist else 1)
        metrics = loop.run(resume)
        if self.dist is not None:
            del loop, step_loss  # DDP's gradient hooks go with it; the next stage wraps the model again
            average_buffers(model)
        return metrics

    def stage1(self) -> tuple[FashionSearchNet, list[dict]]:
        path = self.out / "stage1" / STATE_NAME
        model = self.new_model("fsn")
        resume = self._load_state(path)
        if resume is not None:
            model.load_state_dict(resume.model)
            if resume.epoch >= self.cfg.epochs[0] and resume.step == 0:
                return model, resume.metrics
        loss = ClassificationLoss(model, self.batch, self.gather)
        return model, self._run_stage(1, model, loss, loss.params(), path, self.cfg.batch_size, resume)

    def stage2(self, model: FashionSearchNet, path: Path, resume: StageState | None) -> list[dict]:
        loss = RegionTripletLoss(model, self.batch, self.labels, self.device, self.gather, self.gather_rows)
        return self._run_stage(2, model, loss, loss.params(), path, self.cfg.batch_size, resume, method=model.method)

    def stage3(self, model: FashionSearchNet, reps: np.ndarray, prototypes: list[np.ndarray], path: Path,
               resume: StageState | None, stage2_metrics: list[dict] | None = None) -> list[dict]:
        loss = GlobalTripletLoss(model, self.labels, reps, prototypes, self.cfg.global_negatives, self.device,
                                 self.gather_rows)
        return self._run_stage(3, model, loss, loss.params(), path, self.cfg.global_batch, resume,
                               method=model.method, stage2_metrics=stage2_metrics)

    def _finish(self, model: FashionSearchNet, prototypes: list[np.ndarray], metrics: dict) -> Path:
        if not self.main:
            return self.out / model.method / CHECKPOINT_NAME
        path = Checkpoint(self.schema, self.preset, self.pre, model.method, state_dict_cpu(model), prototypes,
                          self.cfg.region_weight, metrics, asdict(self.cfg), int(len(self.train_rows)),
                          str(self.ds.root)).save(self.out / model.method / CHECKPOINT_NAME)
        log.info("%s: wrote %s", model.method, path)
        return path

    # ---- all methods -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train every method; returns {method: {"checkpoint": path, "metrics": {...}}}."""
        if self.main:
            check_run_folder(self.out, self.schema, self.cfg.fingerprint())
        summary: dict[str, Any] = {}
        todo = [m for m in self.cfg.methods if not self._exists(self.out / m / CHECKPOINT_NAME)]
        for m in self.cfg.methods:
            if m not in todo:
                log.info("%s: already trained (%s); delete it to retrain", m, self.out / m / CHECKPOINT_NAME)
                summary[m] = {"checkpoint": str(self.out / m / CHECKPOINT_NAME), "skipped": True}
        if not todo:
            return summary
        t0 = time.monotonic()
        base, m1 = self.stage1()
        stage1_state = {k: v.clone() for k, v in base.state_dict().items()}
        t1 = time.monotonic() - t0
        for method in todo:
            t_m = time.monotonic()
            model = self._placed(FashionSearchNet(self.schema, self.preset, method))
            metrics: dict[str, Any] = {"stage1": m1, "stage1_s": t1}
            if method == "attribute":
                model.load_state_dict(stage1_state)
                _, protos = self.reps_and_prototypes(model)
            else:
                path = self.out / method / STATE_NAME
                resume = self._load_state(path)
                model.load_state_dict(resume.model if resume is not None else stage1_state)
                r2 = resume if resume is not None and resume.stage == 2 else None
                if resume is not None and resume.stage == 3:
                    metrics["stage2"] = resume.stage2_metrics or []
                else:
                    metrics["stage2"] = self.stage2(model, path, r2)
                reps, protos = self.reps_and_prototypes(model)
                r3 = resume if resume is not None and resume.stage == 3 else None
                if r3 is not None:
                    model.load_state_dict(r3.model)
                # stage-3 state files carry the stage-2 metrics so that a resumed run still reports them
                metrics["stage3"] = self.stage3(model, reps, protos, path, r3, metrics["stage2"])
            metrics["method_s"] = time.monotonic() - t_m
            path = self._finish(model, protos, metrics)
            summary[method] = {"checkpoint": str(path), "metrics": metrics}
            if method == "fsn" and self.main:
                summary[method]["calibration"] = self.calibrate(path)
        return summary

    def calibrate(self, path: Path) -> dict[str, Any] | None:
        """Issue 17's validation choices written into the fsn checkpoint (the code of ``fsn calibrate``)."""
        from fashionsearchnet.training.calibrate import MIN_ROWS, calibrate_checkpoint

        if len(self.train_rows) < MIN_ROWS:
            log.info("fsn: %d training rows, fewer than %d: not calibrated (the paper's ROI step, image-level "
                     "prototypes for region requests)", len(self.train_rows), MIN_ROWS)
            return None
        return calibrate_checkpoint(path, dataset=self.ds)


def train(dataset: Dataset, out: str | Path, cfg: TrainConfig, bars: Bars | None = None,
          dist: DistContext | None = None) -> dict[str, Any]:
    """Train ``cfg.methods`` on ``dataset`` into run folder ``out`` (resumes what a previous call left); ``dist``:
    this process's place in a data-parallel run (:mod:`distributed`)."""
    return Trainer(dataset, out, cfg, bars, dist).run()
