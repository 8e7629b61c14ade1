"""The three-stage schedule of section 3 for each method, resumable, seeded.

Stage 1: L_C (eq. 2) on the GAP classifiers, shared by every method of one command (same initialisation for a
fair comparison; ``attribute`` is the stage-1 model itself). Stage 2 (``fsn``, ``no_aam``): L_C + L_T
(soft-triplet over triplets of regions, one per attribute head, picked inside the mini-batch) + L_TC.
``no_aam`` pools the whole conv5 map instead of the AAM box. Stage 3: L_G (eq. 8) on lam and W only, over
attribute representations computed once (frozen, eval mode). Prototypes: mean fc10_a per value (train split).

Optimiser: SGD, lr 0.01 as the paper, momentum 0.9 and weight decay 5e-4 (the paper does not give them; these
are the AlexNet defaults). Every step is seeded from (seed, stage, epoch, step), so a resumed run draws the
same batches, triplets and dropout masks as an uninterrupted one. State is written atomically at the end of
every epoch and every ``checkpoint_every_s`` seconds; a Ctrl-C or kill loses at most that much work.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.errors import CheckpointError, TrainingError, UsageError
from fashionsearchnet.runtime.features import DEFAULT_REGION_WEIGHT
from fashionsearchnet.training import losses
from fashionsearchnet.training.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_NAME, STATE_NAME, load_file,
                                                  save_atomic, schema_mismatch)
from fashionsearchnet.training.extract import boxes_for, extract_arrays, load_resized, to_tensor
from fashionsearchnet.training.model import FashionSearchNet, canonical_method
from fashionsearchnet.training.presets import Preset, get_preset
from fashionsearchnet.training.triplets import GLOBAL_NEGATIVES, LabelIndex, batch_triplets, global_triplets

log = logging.getLogger(__name__)

Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]
RUN_JSON = "run.json"


@contextlib.contextmanager
def _no_bar(total: int | None, desc: str):
    yield lambda n=1: None


@dataclass
class TrainConfig:
    preset: str = "edge"
    methods: tuple[str, ...] = ("attribute", "no_aam", "fsn")
    device: str = "cpu"
    seed: int = 0
    epochs: tuple[int, int, int] = (10, 10, 10)
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    global_batch: int = 256
    global_negatives: str = "random"
    backbone_weights: str | None = None
    checkpoint_every_s: float = 120.0
    region_weight: float = DEFAULT_REGION_WEIGHT

    def __post_init__(self) -> None:
        get_preset(self.preset)
        self.methods = tuple(dict.fromkeys(canonical_method(m) for m in self.methods))
        if len(self.epochs) != 3 or any(e < 0 for e in self.epochs):
            raise UsageError(f"--epochs must be one or three non-negative numbers (stage 1,2,3), got {self.epochs}")
        if self.batch_size < 2:
            raise UsageError(f"--batch-size must be at least 2 (triplets need pairs), got {self.batch_size}")
        if self.global_batch < 2:
            raise UsageError(f"--global-batch must be at least 2, got {self.global_batch}")
        if self.global_negatives not in GLOBAL_NEGATIVES:
            raise UsageError(f"--global-negatives must be one of {', '.join(GLOBAL_NEGATIVES)}, "
                             f"got {self.global_negatives!r}")
        if not 0.0 <= self.region_weight <= 1.0:
            raise UsageError(f"--region-weight must be in [0, 1], got {self.region_weight}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if not self.checkpoint_every_s >= 0:
            raise UsageError(f"--checkpoint-every must be 0 (every step) or more seconds, got {self.checkpoint_every_s}")

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a run is resumed."""
        return {"preset": self.preset, "seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                "momentum": self.momentum, "weight_decay": self.weight_decay,
                "global_batch": self.global_batch, "global_negatives": self.global_negatives,
                "backbone_weights": self.backbone_weights}


def _seed_all(*parts: int) -> np.random.Generator:
    """Seed torch (dropout, init) and return a numpy generator, both from the tuple ``parts``."""
    ss = np.random.SeedSequence([int(p) for p in parts])
    torch.manual_seed(int(ss.generate_state(1, np.uint64)[0] % (2**63)))
    return np.random.default_rng(ss)


def _state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def compute_prototypes(attr_reps: np.ndarray, labels: np.ndarray, num_classes: tuple[int, ...]) -> list[np.ndarray]:
    """prototypes[a] (C_a, D): mean rep of attribute a over rows labelled with each value; unseen -> mean of all."""
    out = []
    for a, c in enumerate(num_classes):
        reps = attr_reps[:, a].astype(np.float64)
        overall = reps.mean(axis=0) if len(reps) else np.zeros(attr_reps.shape[2])
        proto = np.empty((c, attr_reps.shape[2]), np.float64)
        for v in range(c):
            sel = labels[:, a] == v
            proto[v] = reps[sel].mean(axis=0) if sel.any() else overall
        out.append(proto.astype(np.float32))
    return out


class _Stage:
    """One resumable stage: epochs of seeded mini-batches, finite-loss checks, periodic atomic state."""

    def __init__(self, trainer: "Trainer", number: int, name: str, state_path: Path, model: FashionSearchNet,
                 params: list[torch.nn.Parameter], epochs: int, n: int, batch: int,
                 step_fn: Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, dict[str, float]]],
                 extra_state: dict[str, Any]):
        self.t, self.number, self.name, self.path = trainer, number, name, state_path
        self.model, self.epochs, self.n, self.batch, self.step_fn = model, epochs, n, batch, step_fn
        cfg = trainer.cfg
        self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay if number < 3 else 0.0)
        self.extra = extra_state

    def _save(self, epoch: int, step: int, running: dict[str, float], metrics: list[dict]) -> None:
        save_atomic({"format": CHECKPOINT_FORMAT, "stage": self.number, "epoch": epoch, "step": step,
                     "model": _state_dict_cpu(self.model), "optimizer": self.opt.state_dict(),
                     "running": running, "metrics": metrics, **self.extra}, self.path)

    def run(self, resume: dict[str, Any] | None) -> list[dict[str, float]]:
        cfg = self.t.cfg
        epoch0, step0, running, metrics = 0, 0, {}, []
        if resume is not None and resume.get("stage") == self.number:
            epoch0, step0 = int(resume["epoch"]), int(resume["step"])
            running, metrics = dict(resume.get("running", {})), list(resume.get("metrics", []))
            self.opt.load_state_dict(resume["optimizer"])
            log.info("stage %d (%s): resuming at epoch %d step %d from %s", self.number, self.name, epoch0 + 1,
                     step0 + 1, self.path)
        steps = max(1, math.ceil(self.n / self.batch))
        last_save = time.monotonic()
        for epoch in range(epoch0, self.epochs):
            perm = np.random.default_rng([cfg.seed, self.number, epoch]).permutation(self.n)
            start = step0 if epoch == epoch0 else 0
            if start == 0:
                running = {}
            t0 = time.monotonic()
            with self.t.bars(steps - start, f"stage {self.number} {self.name} epoch {epoch + 1}/{self.epochs}") as adv:
                for step in range(start, steps):
                    rows = perm[step * self.batch:(step + 1) * self.batch]
                    rng = _seed_all(cfg.seed, self.number, epoch, step)
                    self.model.train()
                    loss, parts = self.step_fn(rows, rng)
                    if not bool(torch.isfinite(loss)):
                        raise TrainingError(
                            f"stage {self.number} ({self.name}): non-finite loss {float(loss)} at epoch {epoch + 1} "
                            f"step {step + 1}; lower --lr or check the data (last good state: {self.path})")
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                    parts = {"loss": float(loss.detach()), **parts}
                    for k, v in parts.items():
                        running[k] = running.get(k, 0.0) + v
                    running["_steps"] = running.get("_steps", 0.0) + 1
                    running["_rows"] = running.get("_rows", 0.0) + len(rows)
                    adv(1)
                    if time.monotonic() - last_save > cfg.checkpoint_every_s and step + 1 < steps:
                        self._save(epoch, step + 1, running, metrics)
                        last_save = time.monotonic()
            k = max(running.get("_steps", 1.0), 1.0)
            m = {key: v / k for key, v in running.items() if not key.startswith("_")}
            m["epoch"] = epoch + 1
            m["rows_per_s"] = running.get("_rows", 0.0) / max(time.monotonic() - t0, 1e-9)
            metrics.append(m)
            log.info("stage %d (%s) epoch %d: %s", self.number, self.name, epoch + 1,
                     ", ".join(f"{key}={v:.4g}" for key, v in m.items() if key != "epoch"))
            self._save(epoch + 1, 0, {}, metrics)
            last_save = time.monotonic()
        if resume is None and self.epochs == 0:
            self._save(0, 0, {}, metrics)
        return metrics


class Trainer:
    """Trains the requested methods on a dataset into a run folder (see module docstring)."""

    def __init__(self, dataset: Dataset, out: str | Path, cfg: TrainConfig, bars: Bars | None = None):
        self.ds, self.out, self.cfg = dataset, Path(out), cfg
        self.bars = bars or _no_bar
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

    # ---- run folder ------------------------------------------------------------------------------
    def _check_run_folder(self) -> None:
        path = self.out / RUN_JSON
        mine = {"schema": self.schema.to_dict(), "config": self.cfg.fingerprint()}
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise CheckpointError(f"{path}: corrupt run description; delete the run folder and retrain") from None
            # runs from before --global-negatives existed used the paper's random negatives
            old_cfg = {"global_negatives": "random", **old.get("config", {})}
            if old_cfg != mine["config"]:
                diff = [k for k in mine["config"] if old_cfg.get(k) != mine["config"][k]]
                raise CheckpointError(f"{self.out}: run folder was trained with other settings ({', '.join(diff)}); "
                                      f"use a new --out or the same settings to resume")
            from fashionsearchnet.data.schema import Schema
            diff_s = schema_mismatch(Schema.from_dict(old["schema"], source=str(path)), self.schema)
            if diff_s:
                raise CheckpointError(f"{self.out}: run folder holds a run of another schema ({diff_s}); "
                                      f"use a new --out")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(mine, indent=2), encoding="utf-8")
            tmp.replace(path)

    def _images(self) -> np.ndarray:
        if self.images is None:
            with self.bars(len(self.train_rows), "loading training images") as adv:
                self.images = load_resized(self.ds, self.train_rows, self.pre, adv)
        return self.images

    def _batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_tensor(self._images()[rows], self.pre, self.device)
        y = torch.from_numpy(self.labels[rows]).to(self.device)
        return x, y

    def _new_model(self, method: str) -> FashionSearchNet:
        _seed_all(self.cfg.seed, 0)
        model = FashionSearchNet(self.schema, self.preset, method)
        if self.cfg.backbone_weights:
            model.load_backbone_weights(self.cfg.backbone_weights)
        return model.to(self.device)

    # ---- stages ----------------------------------------------------------------------------------
    def _accuracy(self, logits_blocks: list[torch.Tensor], y: torch.Tensor) -> float:
        hits, total = 0, 0
        for a, blk in enumerate(logits_blocks):
            known = y[:, a] >= 0
            hits += int((blk.argmax(1)[known] == y[known, a]).sum())
            total += int(known.sum())
        return hits / max(total, 1)

    def stage1(self) -> tuple[FashionSearchNet, list[dict]]:
        path = self.out / "stage1" / STATE_NAME
        model = self._new_model("fsn")
        resume = load_file(path) if path.is_file() else None
        if resume is not None:
            model.load_state_dict(resume["model"])
            if resume["epoch"] >= self.cfg.epochs[0] and resume["step"] == 0:
                return model, resume["metrics"]
        offs = model.offsets

        def step(rows: np.ndarray, rng: np.random.Generator):
            x, y = self._batch(rows)
            o = model.forward_backbone(x)
            loss = losses.classification_loss(o["logits"], y, offs)
            blocks = [o["logits"][:, offs[a]:offs[a + 1]] for a in range(len(offs) - 1)]
            return loss, {"acc": self._accuracy([b.detach() for b in blocks], y)}

        params = [p for n, p in model.named_parameters() if n.startswith(("conv", "norms", "classifier"))]
        st = _Stage(self, 1, "L_C", path, model, params, self.cfg.epochs[0], len(self.train_rows),
                    self.cfg.batch_size, step, {})
        return model, st.run(resume)

    def stage2(self, model: FashionSearchNet, path: Path, resume: dict | None) -> list[dict]:
        offs = model.offsets
        A = model.num_attributes

        def step(rows: np.ndarray, rng: np.random.Generator):
            x, y = self._batch(rows)
            o = model.forward_backbone(x)
            l_c = losses.classification_loss(o["logits"], y, offs)
            boxes = boxes_for(model, o["aams"].detach().cpu().numpy(), o["region_maps"].detach().cpu().numpy())
            reps, _ = model.heads(o["conv5"], torch.from_numpy(boxes).to(self.device))
            y_np = self.labels[rows]
            l_t = reps.sum() * 0.0
            n_trip, n_ok = 0, 0
            for a in range(A):
                ia, ip, ineg = batch_triplets(y_np[:, a], rng)
                if len(ia) == 0:
                    continue
                ra, rp, rn = reps[ia, a], reps[ip, a], reps[ineg, a]
                l_t = l_t + losses.soft_triplet(ra, rp, rn)
                with torch.no_grad():
                    n_ok += int((losses.l2_distance(ra, rp) < losses.l2_distance(ra, rn)).sum())
                n_trip += len(ia)
            rep_logits = model.rep_logits(reps)
            l_tc = losses.classification_loss(rep_logits, y)
            loss = l_c + l_t + l_tc
            return loss, {"L_C": float(l_c.detach()), "L_T": float(l_t.detach()), "L_TC": float(l_tc.detach()),
                          "triplet_acc": n_ok / max(n_trip, 1),
                          "rep_acc": self._accuracy([b.detach() for b in rep_logits], y)}

        params = [p for n, p in model.named_parameters() if n not in ("lam", "W")]
        st = _Stage(self, 2, "L_C+L_T+L_TC", path, model, params, self.cfg.epochs[1], len(self.train_rows),
                    self.cfg.batch_size, step, {"method": model.method})
        return st.run(resume)

    def stage3(self, model: FashionSearchNet, reps: np.ndarray, prototypes: list[np.ndarray], path: Path,
               resume: dict | None, extra: dict[str, Any] | None = None) -> list[dict]:
        index = LabelIndex(self.labels)
        R = torch.from_numpy(reps).to(self.device)
        protos = [torch.from_numpy(p).to(self.device) for p in prototypes]
        A = model.num_attributes

        def step(rows: np.ndarray, rng: np.random.Generator):
            total = (model.lam.sum() + model.W.sum()) * 0.0  # a step without triplets is a zero-gradient step
            n_trip, n_ok = 0, 0
            for astar in range(A + 1):
                t = global_triplets(index, rows, astar, model.num_classes, rng, negatives=self.cfg.global_negatives)
                if len(t.anchors) == 0:
                    continue
                anc = R[t.anchors].clone()
                if astar > 0:
                    anc[:, astar - 1] = protos[astar - 1][torch.from_numpy(t.values).to(self.device)]
                fa = model.global_rep(anc, astar)
                fp = model.global_rep(R[t.positives], astar)
                fn = model.global_rep(R[t.negatives], astar)
                total = total + losses.soft_triplet(fa, fp, fn)
                with torch.no_grad():
                    n_ok += int((losses.l2_distance(fa, fp) < losses.l2_distance(fa, fn)).sum())
                n_trip += len(t.anchors)
            return total, {"global_triplet_acc": n_ok / max(n_trip, 1), "triplets": float(n_trip)}

        st = _Stage(self, 3, "L_G", path, model, [model.lam, model.W], self.cfg.epochs[2], len(self.train_rows),
                    self.cfg.global_batch, step, {"method": model.method, **(extra or {})})
        return st.run(resume)

    def _reps_and_prototypes(self, model: FashionSearchNet) -> tuple[np.ndarray, list[np.ndarray]]:
        with self.bars(len(self.train_rows), f"{model.method}: attribute representations") as adv:
            feats = extract_arrays(model, self._images(), self.pre, device=str(self.device), progress=adv)
        return feats["attr_reps"], compute_prototypes(feats["attr_reps"], self.labels, model.num_classes)

    def _finish(self, model: FashionSearchNet, prototypes: list[np.ndarray], metrics: dict) -> Path:
        path = self.out / model.method / CHECKPOINT_NAME
        save_atomic({
            "format": CHECKPOINT_FORMAT, "schema": self.schema.to_dict(), "preset": self.preset.to_dict(),
            "preprocessing": self.pre.to_dict(), "method": model.method, "model": _state_dict_cpu(model),
            "prototypes": prototypes, "region_weight": self.cfg.region_weight, "metrics": metrics,
            "config": asdict(self.cfg), "train_rows": int(len(self.train_rows)), "data": str(self.ds.root),
        }, path)
        log.info("%s: wrote %s", model.method, path)
        return path

    # ---- all methods -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train every method; returns {method: {"checkpoint": path, "metrics": {...}}}."""
        self._check_run_folder()
        summary: dict[str, Any] = {}
        todo = [m for m in self.cfg.methods if not (self.out / m / CHECKPOINT_NAME).is_file()]
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
            model = FashionSearchNet(self.schema, self.preset, method).to(self.device)
            metrics: dict[str, Any] = {"stage1": m1, "stage1_s": t1}
            if method == "attribute":
                model.load_state_dict(stage1_state)
                _, protos = self._reps_and_prototypes(model)
            else:
                path = self.out / method / STATE_NAME
                resume = load_file(path) if path.is_file() else None
                model.load_state_dict(resume["model"] if resume is not None else stage1_state)
                r2 = resume if resume is not None and resume["stage"] == 2 else None
                if resume is not None and resume["stage"] == 3:
                    metrics["stage2"] = resume.get("stage2_metrics", [])
                else:
                    metrics["stage2"] = self.stage2(model, path, r2)
                reps, protos = self._reps_and_prototypes(model)
                r3 = resume if resume is not None and resume["stage"] == 3 else None
                if r3 is not None:
                    model.load_state_dict(r3["model"])
                # stage-3 state files carry the stage-2 metrics so that a resumed run still reports them
                metrics["stage3"] = self.stage3(model, reps, protos, path, r3, {"stage2_metrics": metrics["stage2"]})
            metrics["method_s"] = time.monotonic() - t_m
            summary[method] = {"checkpoint": str(self._finish(model, protos, metrics)), "metrics": metrics}
        return summary


def train(dataset: Dataset, out: str | Path, cfg: TrainConfig, bars: Bars | None = None) -> dict[str, Any]:
    """Train ``cfg.methods`` on ``dataset`` into run folder ``out`` (resumes what a previous call left)."""
    return Trainer(dataset, out, cfg, bars).run()
