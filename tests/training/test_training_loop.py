"""The stage loop on its own (no images): seeded batches, resume after an interrupt, non-finite losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fashionsearchnet.errors import TrainingError
from fashionsearchnet.training.checkpoint import StageState
from fashionsearchnet.training.loop import StageLoop
from fashionsearchnet.training.seeding import SeededBatches

N, D = 50, 4
_X = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)
_Y = _X @ np.array([1.0, -2.0, 0.5, 3.0], np.float32)  # planted weights


class LinearLoss:
    """Squared error of a linear model on planted data, plus the step generator's draw (to show it is replayed)."""

    name = "toy"

    def __init__(self, model: torch.nn.Linear, stop_after: int | None = None):
        self.model, self.calls, self.stop_after, self.draws = model, 0, stop_after, []

    def __call__(self, rows, rng):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        self.draws.append(float(rng.random()))
        pred = self.model(torch.from_numpy(_X[rows]))[:, 0]
        loss = ((pred - torch.from_numpy(_Y[rows])) ** 2).mean()
        return loss, {"rows": float(len(rows))}


def _loop(model, loss, path, epochs=3):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return StageLoop(2, path, model, opt, loss, SeededBatches(N, 8, seed=3, stage=2), epochs, seed=3,
                     checkpoint_every_s=0.0, state_fields={"method": "toy"})


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(D, 1)


def test_seeded_batches_cover_every_row_once_per_epoch_and_repeat_for_a_seed():
    s = SeededBatches(N, 8, seed=3, stage=2)
    assert s.steps == 7
    e0, e1 = s.epoch(0), s.epoch(1)
    assert [len(b) for b in e0] == [8] * 6 + [2]
    assert sorted(np.concatenate(e0)) == list(range(N)) == sorted(np.concatenate(e1))
    assert not np.array_equal(np.concatenate(e0), np.concatenate(e1))
    assert all(np.array_equal(a, b) for a, b in zip(e0, SeededBatches(N, 8, seed=3, stage=2).epoch(0)))
    assert not np.array_equal(np.concatenate(e0), np.concatenate(SeededBatches(N, 8, seed=3, stage=1).epoch(0)))


def test_loss_falls_and_the_state_records_the_end(tmp_path):
    model = _model()
    metrics = _loop(model, LinearLoss(model), tmp_path / "state.pt", epochs=4).run(None)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4] and metrics[-1]["loss"] < 0.5 * metrics[0]["loss"]
    assert all(m["rows"] == N / 7 for m in metrics)  # per-step figures are averaged over the epoch's steps
    st = StageState.load(tmp_path / "state.pt")
    assert (st.stage, st.epoch, st.step, st.method, st.running) == (2, 4, 0, "toy", {})
    assert all(torch.equal(st.model[k], v) for k, v in model.state_dict().items())


def test_resume_after_an_interrupt_replays_the_same_steps(tmp_path):
    ref_model = _model()
    ref_loss = LinearLoss(ref_model)
    ref = _loop(ref_model, ref_loss, tmp_path / "ref.pt").run(None)
    model = _model()
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of epoch 2 (7 steps per epoch)
        _loop(model, LinearLoss(model, stop_after=10), tmp_path / "cut.pt").run(None)
    st = StageState.load(tmp_path / "cut.pt")
    assert (st.epoch, st.step) == (1, 3)
    model = _model()
    model.load_state_dict(st.model)
    loss = LinearLoss(model)
    got = _loop(model, loss, tmp_path / "cut.pt").run(st)
    assert loss.draws == ref_loss.draws[10:]  # the same seeded draws from the step it stopped at
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()))
    strip = [{k: v for k, v in m.items() if k != "rows_per_s"} for m in got]
    assert strip == [{k: v for k, v in m.items() if k != "rows_per_s"} for m in ref]


def test_non_finite_loss_names_stage_epoch_and_step(tmp_path):
    model = _model()
    loss = LinearLoss(model)

    def nan_on_9(rows, rng):
        out, parts = LinearLoss.__call__(loss, rows, rng)
        return (out * float("nan"), parts) if loss.calls == 9 else (out, parts)

    nan_on_9.name = "toy"
    with pytest.raises(TrainingError, match=r"stage 2 \(toy\): non-finite loss nan at epoch 2 step 2; lower --lr"):
        _loop(model, nan_on_9, tmp_path / "state.pt").run(None)
