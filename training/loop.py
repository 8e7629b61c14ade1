"""The resumable loop of one training stage: epochs of seeded mini-batches, finite-loss checks, periodic state.

State (:class:`~fashionsearchnet.training.checkpoint.StageState`) is written atomically at the end of every epoch
and every ``checkpoint_every_s`` seconds inside one; a Ctrl-C or kill loses at most that much work, and a resumed
stage continues at the saved step with the same batches and draws (:mod:`seeding`).
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol

import numpy as np
import torch

from fashionsearchnet.errors import TrainingError
from fashionsearchnet.training.checkpoint import StageState, state_dict_cpu
from fashionsearchnet.training.seeding import seed_all

log = logging.getLogger(__name__)

Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def no_bar(total: int | None, desc: str):
    """A progress bar that shows nothing."""
    yield lambda n=1: None


class Sampler(Protocol):
    """Which training rows each step of an epoch sees (:class:`~fashionsearchnet.training.seeding.SeededBatches`)."""

    @property
    def steps(self) -> int: ...

    def epoch(self, epoch: int) -> list[np.ndarray]: ...


class StageLoss(Protocol):
    """A stage's loss (:mod:`stage_losses`): rows and the step's generator -> (loss, figures for the log)."""

    name: str

    def __call__(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]: ...


class StageLoop:
    """Runs stage ``number`` for ``epochs`` epochs of ``sampler``'s batches, stepping ``optimizer`` on ``loss``;
    its state goes to ``state_path`` with ``state_fields`` (StageState's method / stage2_metrics).

    ``_save`` is the one place that writes state, and ``sampler`` the one source of a step's rows: what a
    data-parallel run would change (one writer; each process its share of the rows)."""

    def __init__(self, number: int, state_path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loss: StageLoss, sampler: Sampler, epochs: int, seed: int, checkpoint_every_s: float,
                 bars: Bars = no_bar, state_fields: dict[str, Any] | None = None, writes_state: bool = True,
                 processes: int = 1):
        self.number, self.path, self.model, self.opt = number, state_path, model, optimizer
        self.loss, self.sampler, self.epochs, self.seed = loss, sampler, epochs, seed
        self.checkpoint_every_s, self.bars, self.fields = checkpoint_every_s, bars, state_fields or {}
        # data-parallel runs: only rank 0 writes; each of ``processes`` sees its share of a step's rows
        self.writes_state, self.processes = writes_state, processes

    def _save(self, epoch: int, step: int, running: dict[str, float], metrics: list[dict]) -> None:
        if not self.writes_state:
            return
        StageState(self.number, epoch, step, state_dict_cpu(self.model), self.opt.state_dict(), running, metrics,
                   **self.fields).save(self.path)

    def run(self, resume: StageState | None) -> list[dict[str, float]]:
        """Train from the start, or from ``resume`` when it is this stage's state; returns per-epoch figures."""
        name = self.loss.name
        epoch0, step0, running, metrics = 0, 0, {}, []
        if resume is not None and resume.stage == self.number:
            epoch0, step0 = resume.epoch, resume.step
            running, metrics = dict(resume.running), list(resume.metrics)
            self.opt.load_state_dict(resume.optimizer)
            log.info("stage %d (%s): resuming at epoch %d step %d from %s", self.number, name, epoch0 + 1,
                     step0 + 1, self.path)
        steps = self.sampler.steps
        last_save = time.monotonic()
        for epoch in range(epoch0, self.epochs):
            batches = self.sampler.epoch(epoch)
            start = step0 if epoch == epoch0 else 0
            if start == 0:
                running = {}
            t0 = time.monotonic()
            with self.bars(steps - start, f"stage {self.number} {name} epoch {epoch + 1}/{self.epochs}") as adv:
                for step in range(start, steps):
                    rows = batches[step]
                    rng = seed_all(self.seed, self.number, epoch, step)
                    self.model.train()
                    loss, parts = self.loss(rows, rng)
                    if not bool(torch.isfinite(loss)):
                        raise TrainingError(
                            f"stage {self.number} ({name}): non-finite loss {float(loss.detach())} at epoch {epoch + 1} "
                            f"step {step + 1}; lower --lr or check the data (last good state: {self.path})")
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                    parts = {"loss": float(loss.detach()), **parts}
                    for k, v in parts.items():
                        running[k] = running.get(k, 0.0) + v
                    running["_steps"] = running.get("_steps", 0.0) + 1
                    running["_rows"] = running.get("_rows", 0.0) + len(rows) * self.processes
                    adv(1)
                    if time.monotonic() - last_save > self.checkpoint_every_s and step + 1 < steps:
                        self._save(epoch, step + 1, running, metrics)
                        last_save = time.monotonic()
            k = max(running.get("_steps", 1.0), 1.0)
            m = {key: v / k for key, v in running.items() if not key.startswith("_")}
            m["epoch"] = epoch + 1
            m["rows_per_s"] = running.get("_rows", 0.0) / max(time.monotonic() - t0, 1e-9)
            metrics.append(m)
            log.info("stage %d (%s) epoch %d: %s", self.number, name, epoch + 1,
                     ", ".join(f"{key}={v:.4g}" for key, v in m.items() if key != "epoch"))
            self._save(epoch + 1, 0, {}, metrics)
            last_save = time.monotonic()
        if resume is None and self.epochs == 0:
            self._save(0, 0, {}, metrics)
        return metrics
