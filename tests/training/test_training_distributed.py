"""Data-parallel training (training/distributed.py): N=2 processes on the CPU (gloo) against N=1 with the same
global batch and seed; rank 0 alone writes; a killed run resumes to the uninterrupted one; bad --nproc."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fashionsearchnet.app.cli import main  # noqa: E402
from fashionsearchnet.data.dataset import load_dataset  # noqa: E402
from fashionsearchnet.data.synth import generate  # noqa: E402
from fashionsearchnet.errors import TrainingError, UsageError  # noqa: E402
from fashionsearchnet.training import distributed as ddp  # noqa: E402
from fashionsearchnet.training.checkpoint import Checkpoint  # noqa: E402
from fashionsearchnet.training.config import TrainConfig  # noqa: E402
from fashionsearchnet.training.seeding import SeededBatches  # noqa: E402
from fashionsearchnet.training.trainer import train  # noqa: E402

CFG = dict(preset="tiny", methods=("fsn",), epochs=(2, 2, 2), seed=3, batch_size=16, global_batch=32,
           checkpoint_every_s=0.0)
# Tolerance on the per-epoch stage losses, N=2 against N=1 (relative): the same global batches, triplets, dropout
# masks and loss over the whole batch; what differs is the order of float sums (the gradient all-reduce, the
# backbone over two shares). The tiny preset has no BatchNorm (edge has: per-share statistics on the CPU,
# docs/distributed.md).
REL_TOL = 1e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("ddp") / "data", 64, seed=7, size=64)


def _losses(run: Path) -> dict[str, list[float]]:
    m = Checkpoint.load(run / "fsn" / "checkpoint.pt").metrics
    return {s: [e["loss"] for e in m[s]] for s in ("stage1", "stage2", "stage3")}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return Checkpoint.load(run / "fsn" / "checkpoint.pt").model


def _recording_worker(rank: int, world: int, port: int, data: str, out: str, cfg: TrainConfig, log_dir: str,
                      stop_after: int) -> None:
    """A training process that records every state/checkpoint write it makes, and may stop after
    ``stop_after`` stage-2 steps (a kill: the processes end without a word)."""
    from fashionsearchnet.training import checkpoint, stage_losses

    def record(kind):
        orig = getattr(checkpoint, kind).save

        def save(self, path, *a, **k):
            with open(os.path.join(log_dir, f"rank{rank}.log"), "a") as f:
                f.write(f"{kind} {path}\n")
            return orig(self, path, *a, **k)
        setattr(getattr(checkpoint, kind), "save", save)

    record("StageState")
    record("Checkpoint")
    if stop_after:
        calls = {"n": 0}
        orig_call = stage_losses.RegionTripletLoss.__call__

        def call(self, rows, rng):
            calls["n"] += 1
            if calls["n"] > stop_after:
                os._exit(1)
            return orig_call(self, rows, rng)
        stage_losses.RegionTripletLoss.__call__ = call
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    ctx, device = ddp.init_from_env("cpu")
    try:
        train(load_dataset(data), out, cfg, dist=ctx)
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two(data, tmp_path_factory):
    """A 2-process run of CFG (its run folder and the folder of the processes' write logs)."""
    root = tmp_path_factory.mktemp("ddp_two")
    _spawn(data, root / "run", TrainConfig(**CFG), root / "log")
    return root / "run", root / "log"


def _spawn(data, out, cfg, log_dir, stop_after=0):
    import torch.multiprocessing as mp
    os.makedirs(log_dir, exist_ok=True)
    mp.spawn(_recording_worker, args=(2, ddp.free_port(), str(data), str(out), cfg, str(log_dir), stop_after),
             nprocs=2, join=True)


def test_shards_rebuild_the_same_global_batches_at_any_n():
    base = SeededBatches(37, 8, seed=4, stage=2)
    for world in (1, 2, 3):
        shards = [ddp.ShardedBatches(base, r, world) for r in range(world)]
        for epoch in (0, 1):
            glob = base.epoch(epoch)
            per_rank = [s.epoch(epoch) for s in shards]
            for step, b in enumerate(glob):
                np.testing.assert_array_equal(np.concatenate([p[step] for p in per_rank]), b)
                assert all(len(p[step]) >= len(b) // world for p in per_rank)


def test_two_processes_match_one_and_rank0_alone_writes(data, two, tmp_path):
    run2, logs = two
    train(load_dataset(data), tmp_path / "n1", TrainConfig(**CFG))
    one, two_l = _losses(tmp_path / "n1"), _losses(run2)
    for stage in one:
        assert len(one[stage]) == len(two_l[stage]) == 2
        np.testing.assert_allclose(two_l[stage], one[stage], rtol=REL_TOL, err_msg=stage)
    one_w, two_w = _weights(tmp_path / "n1"), _weights(run2)
    for k in one_w:
        torch.testing.assert_close(two_w[k], one_w[k], rtol=1e-3, atol=1e-4, msg=k)
    assert not (logs / "rank1.log").exists(), (logs / "rank1.log").read_text()
    writes = (logs / "rank0.log").read_text().splitlines()
    assert any(w.startswith("Checkpoint ") for w in writes) and any(w.startswith("StageState ") for w in writes)


def test_killed_two_process_run_resumes_to_the_uninterrupted_one(data, two, tmp_path):
    cfg = TrainConfig(**CFG)
    with pytest.raises(Exception):
        _spawn(data, tmp_path / "cut", cfg, tmp_path / "log_cut", stop_after=5)  # stage 2, epoch 2, step 2
    assert not (tmp_path / "cut" / "fsn" / "checkpoint.pt").exists()
    _spawn(data, tmp_path / "cut", cfg, tmp_path / "log_cut2")
    ref, cut = _weights(two[0]), _weights(tmp_path / "cut")
    assert ref.keys() == cut.keys()
    for k in ref:
        torch.testing.assert_close(cut[k], ref[k], rtol=0, atol=1e-6, msg=k)
    ref_l, cut_l = _losses(two[0]), _losses(tmp_path / "cut")
    for stage in ref_l:
        assert cut_l[stage] == pytest.approx(ref_l[stage], rel=1e-6), stage


@pytest.mark.parametrize("nproc, batch, needle", [(0, 16, "--nproc 0: give 1 or more"),
                                                   (5, 4, "--nproc 5: more processes than rows in a batch")])
def test_bad_nproc_is_one_line_before_any_work(data, tmp_path, capsys, nproc, batch, needle):
    rc = main(["train", str(data), "--out", str(tmp_path / "r"), "--preset", "tiny", "--method", "attribute",
               "--batch-size", str(batch), "--nproc", str(nproc)])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_check_nproc_counts_the_last_short_batch():
    ddp.check_nproc(2, 34, {"--batch-size": 16})  # batches of 16, 16, 2
    with pytest.raises(UsageError, match="batch of 1 rows"):
        ddp.check_nproc(2, 33, {"--batch-size": 16})
