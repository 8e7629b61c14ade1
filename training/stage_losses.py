"""The loss of each training stage, assembled from the pure functions of :mod:`losses` and :mod:`triplets`.

Each object is called with a step's rows (indices into the training split) and the step's seeded generator and
returns (loss tensor, per-step figures for the log); ``params`` are what the stage's optimiser updates.

* :class:`ClassificationLoss` (stage 1): L_C (eq. 2) on the GAP classifiers.
* :class:`RegionTripletLoss` (stage 2, ``fsn`` and ``no_aam``): L_C + L_T (soft-triplet over triplets of regions,
  one per attribute head, picked inside the mini-batch) + L_TC.
* :class:`GlobalTripletLoss` (stage 3): L_G (eq. 8) on lam and W only, over attribute representations computed
  once (frozen); anchors of a manipulation triplet take the target value's prototype.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fashionsearchnet.training import losses
from fashionsearchnet.training.extract import boxes_for
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.triplets import LabelIndex, batch_triplets, global_triplets

StepResult = tuple[torch.Tensor, dict[str, float]]
BatchFn = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]  # rows -> (images, labels) on the device
Gather = Callable[[torch.Tensor], torch.Tensor]  # a process's share -> the global batch (data-parallel runs)
RowsGather = Callable[[np.ndarray], np.ndarray]


def _same(x):
    """One process: its share is the global batch."""
    return x


def accuracy(logits_blocks: list[torch.Tensor], y: torch.Tensor) -> float:
    """Share of known labels (y >= 0) whose block argmax is right, over every attribute."""
    hits, total = 0, 0
    for a, blk in enumerate(logits_blocks):
        known = y[:, a] >= 0
        hits += int((blk.argmax(1)[known] == y[known, a]).sum())
        total += int(known.sum())
    return hits / max(total, 1)


class ClassificationLoss:
    """Stage 1: L_C on the GAP classifiers (backbone and classifier weights)."""

    name = "L_C"

    def __init__(self, model: FashionSearchNet, batch: BatchFn, gather: Gather = _same):
        self.model, self.batch, self.gather = model, batch, gather

    def params(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if n.startswith(("conv", "norms", "classifier"))]

    def __call__(self, rows: np.ndarray, rng: np.random.Generator) -> StepResult:
        offs = self.model.offsets
        x, y = self.batch(rows)
        logits = self.gather(self.model.forward_backbone(x)["logits"])
        y = self.gather(y)
        loss = losses.classification_loss(logits, y, offs)
        blocks = [logits[:, offs[a]:offs[a + 1]] for a in range(len(offs) - 1)]
        return loss, {"acc": accuracy([b.detach() for b in blocks], y)}


class RegionTripletLoss:
    """Stage 2: L_C + L_T + L_TC on everything but lam and W."""

    name = "L_C+L_T+L_TC"

    def __init__(self, model: FashionSearchNet, batch: BatchFn, labels: np.ndarray, device: torch.device,
                 gather: Gather = _same, gather_rows: RowsGather = _same):
        self.model, self.batch, self.labels, self.device = model, batch, labels, device
        self.gather, self.gather_rows = gather, gather_rows

    def params(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if n not in ("lam", "W")]

    def __call__(self, rows: np.ndarray, rng: np.random.Generator) -> StepResult:
        model = self.model
        x, y = self.batch(rows)
        o = model.forward_backbone(x)
        boxes = boxes_for(model, o["aams"].detach().cpu().numpy(), o["region_maps"].detach().cpu().numpy())
        reps, _ = model.heads(model.backbone_features(o), torch.from_numpy(boxes).to(self.device))
        # the global batch (every process's share, in order): the loss and the triplets are picked over all of it
        logits, reps, y = self.gather(o["logits"]), self.gather(reps), self.gather(y)
        l_c = losses.classification_loss(logits, y, model.offsets)
        y_np = self.labels[self.gather_rows(rows)]
        l_t = reps.sum() * 0.0
        n_trip, n_ok = 0, 0
        for a in range(model.num_attributes):
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
                      "rep_acc": accuracy([b.detach() for b in rep_logits], y)}


class GlobalTripletLoss:
    """Stage 3: L_G on lam and W over fixed attribute representations ``reps`` (N, A, D) of the training rows."""

    name = "L_G"

    def __init__(self, model: FashionSearchNet, labels: np.ndarray, reps: np.ndarray, prototypes: list[np.ndarray],
                 negatives: str, device: torch.device, gather_rows: RowsGather = _same):
        self.model, self.negatives, self.device, self.gather_rows = model, negatives, device, gather_rows
        self.index = LabelIndex(labels)
        self.reps = torch.from_numpy(reps).to(device)
        self.protos = [torch.from_numpy(p).to(device) for p in prototypes]

    def params(self) -> list[torch.nn.Parameter]:
        return [self.model.lam, self.model.W]

    def __call__(self, rows: np.ndarray, rng: np.random.Generator) -> StepResult:
        model, R = self.model, self.reps
        rows = self.gather_rows(rows)  # every process computes the whole (small) step over the global batch
        total = (model.lam.sum() + model.W.sum()) * 0.0  # a step without triplets is a zero-gradient step
        n_trip, n_ok = 0, 0
        for astar in range(model.num_attributes + 1):
            t = global_triplets(self.index, rows, astar, model.num_classes, rng, negatives=self.negatives)
            if len(t.anchors) == 0:
                continue
            anc = R[t.anchors].clone()
            if astar > 0:
                anc[:, astar - 1] = self.protos[astar - 1][torch.from_numpy(t.values).to(self.device)]
            fa = model.global_rep(anc, astar)
            fp = model.global_rep(R[t.positives], astar)
            fn = model.global_rep(R[t.negatives], astar)
            total = total + losses.soft_triplet(fa, fp, fn)
            with torch.no_grad():
                n_ok += int((losses.l2_distance(fa, fp) < losses.l2_distance(fa, fn)).sum())
            n_trip += len(t.anchors)
        return total, {"global_triplet_acc": n_ok / max(n_trip, 1), "triplets": float(n_trip)}
