"""Data-parallel training (torch.distributed, DistributedDataParallel): one process per device, gloo on CPU and
NCCL on CUDA, started by ``fsn train --nproc N`` (torch.multiprocessing spawn on this machine) or by ``torchrun``
(env:// rendezvous: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), one code path for both.

What makes a run of N processes the run of one (docs/distributed.md):

* :class:`ShardedBatches`: every process draws the same seeded global batch (:class:`SeededBatches`) and takes a
  contiguous share of it (``np.array_split``); the global batch does not depend on N.
* Each process runs the backbone on its share only; the outputs the loss needs (logits, attribute reps, the rows
  themselves) are all-gathered *with autograd* (:func:`gather_cat`), so that every process computes the same loss
  over the whole global batch, triplet mining included, with the same seeded generator. The gather's backward sums
  the N identical losses' gradients into each share (N x dL/dshare), and DDP's all-reduce averages over N: the
  parameters get exactly dL/dtheta of the global batch.
* Stage 3 works on fixed representations of every training row (computed by :func:`gather_cat` of each share's
  extraction, the prototype pass included); lam and W are small, so each process computes the whole step.
* BatchNorm: on CUDA the model's BatchNorm layers become SyncBatchNorm (global batch statistics). On CPU torch has
  no SyncBatchNorm: statistics are per share, the source of the stated tolerance against N=1; at the end of every
  stage the running statistics are averaged over the processes, so that every process (and the checkpoint) holds
  the same model. Dropout (:class:`ShardDropout`) draws the global batch's mask on every process (the same
  seed per step) and applies the process's rows of it: the same masks as one process.
* Rank 0 alone writes state and checkpoints; resumed state is read by rank 0 and broadcast.
"""
from __future__ import annotations

import logging
import os
import socket
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from fashionsearchnet.errors import UsageError
from fashionsearchnet.training.seeding import SeededBatches

log = logging.getLogger(__name__)

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment carries an env:// rendezvous (torchrun sets all four)."""
    return all(v in os.environ for v in TORCHRUN_VARS)


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def init_from_env(device: str) -> tuple[DistContext, str]:
    """Join the process group described by the environment; returns the context and this process's device."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group(backend_for(device), init_method="env://")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank), device


def shortest_batch(n: int, batch: int) -> int:
    """Rows in the smallest batch of an epoch of ``n`` rows cut into batches of ``batch``."""
    b = min(batch, n)
    return min(b, n % batch) if n % batch else b


def check_nproc(nproc: int, n_train: int, batch_sizes: dict[str, int]) -> None:
    """One-line error when ``nproc`` is not a positive count or some process would get no row of a batch."""
    if nproc < 1:
        raise UsageError(f"--nproc {nproc}: give 1 or more processes")
    for flag, b in batch_sizes.items():
        s = shortest_batch(n_train, b)
        if nproc > s:
            raise UsageError(f"--nproc {nproc}: more processes than rows in a batch ({flag} {b} over {n_train} "
                             f"training rows leaves a batch of {s} rows); use --nproc {s} or fewer, or larger batches")


@dataclass(frozen=True)
class ShardedBatches:
    """This process's contiguous share of every seeded global batch of ``base`` (same steps as ``base``)."""

    base: SeededBatches
    rank: int
    world: int

    @property
    def steps(self) -> int:
        return self.base.steps

    def epoch(self, epoch: int) -> list[np.ndarray]:
        return [np.array_split(b, self.world)[self.rank] for b in self.base.epoch(epoch)]


def gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``t`` along dim 0 in rank order (shares may differ in length), keeping autograd:
    the backward hands each process the sum over processes of the gradient of its share."""
    import torch.distributed.nn.functional as dnn

    world = dist.get_world_size()
    n = torch.tensor([t.shape[0]], dtype=torch.long, device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    sizes_i = [int(s) for s in sizes]
    top = max(sizes_i)
    if t.shape[0] < top:
        t = torch.cat([t, t.new_zeros((top - t.shape[0],) + tuple(t.shape[1:]))], dim=0)
    if t.requires_grad:
        with warnings.catch_warnings():  # deprecated for the functional collectives, which have no CPU autograd
            warnings.simplefilter("ignore", FutureWarning)
            parts = dnn.all_gather(t)
    else:
        parts = _plain_gather(t, world)
    return torch.cat([p[:s] for p, s in zip(parts, sizes_i)], dim=0)


def _plain_gather(t: torch.Tensor, world: int) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(out, t.contiguous())
    return out


def gather_rows(rows: np.ndarray) -> np.ndarray:
    """The global batch's row indices from every process's share (rank order = the seeded order)."""
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, np.asarray(rows, dtype=np.int64))
    return np.concatenate(parts)


def gather_array(a: np.ndarray, device: torch.device) -> np.ndarray:
    """Rank-ordered concatenation of a numpy array held by every process (sent as a tensor on ``device``)."""
    return gather_cat(torch.from_numpy(np.ascontiguousarray(a)).to(device)).cpu().numpy()


def average_buffers(model: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over the processes."""
    world = dist.get_world_size()
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(world)


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardDropout(torch.nn.Module):
    """Dropout that draws the mask of the whole global batch and applies this process's rows of it, so that the
    N processes together drop exactly what one process would (the mask does not depend on the values). A tensor
    that already holds the global batch (after a gather) is dropped as a whole. ``share`` = (offset, rows, total)
    is set before every step by :class:`DDPLoss`."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.share: tuple[int, int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if not self.training or self.share is None or x.shape[0] == self.share[2]:
            return F.dropout(x, self.p, self.training)
        off, n, total = self.share
        if x.shape[0] != n:
            raise RuntimeError(f"ShardDropout: a batch of {x.shape[0]} rows is neither this share ({n}) nor the "
                               f"global batch ({total})")
        mask = F.dropout(torch.ones((total,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device), self.p, True)
        return x * mask[off:off + n]


def shard_dropout(model: torch.nn.Module) -> None:
    """Replace every nn.Dropout of ``model`` by a :class:`ShardDropout` (no weights: state dicts are unchanged)."""
    for name, child in list(model.named_children()):
        if isinstance(child, torch.nn.Dropout):
            setattr(model, name, ShardDropout(child.p))
        else:
            shard_dropout(child)


class StepModule(torch.nn.Module):
    """The model and a stage loss as one module, so that DDP's forward (and its gradient hooks) cover a step."""

    def __init__(self, model: torch.nn.Module, loss: Callable):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, rows: np.ndarray, rng: np.random.Generator):
        return self.loss(rows, rng)


class DDPLoss:
    """A stage loss run through DistributedDataParallel (what :class:`~loop.StageLoop` calls)."""

    def __init__(self, model: torch.nn.Module, loss: Any, device: torch.device):
        from torch.nn.parallel import DistributedDataParallel

        self.name = loss.name
        self.dropouts = [m for m in model.modules() if isinstance(m, ShardDropout)]
        ids = [device.index] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(StepModule(model, loss), device_ids=ids, find_unused_parameters=True)

    def __call__(self, rows: np.ndarray, rng: np.random.Generator):
        sizes: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(sizes, int(len(rows)))
        rank = dist.get_rank()
        for d in self.dropouts:
            d.share = (int(sum(sizes[:rank])), int(sizes[rank]), int(sum(sizes)))
        return self.ddp(rows, rng)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, nproc: int, port: int, data: str, out: str, cfg: Any, log_level: int) -> None:
    """One spawned process of ``fsn train --nproc N``: joins the group over env:// and trains its share."""
    from dataclasses import replace

    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.trainer import train

    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(nproc),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    logging.basicConfig(level=log_level if local_rank == 0 else logging.WARNING,
                        format=f"[rank {local_rank}] %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    ctx, device = init_from_env(cfg.device)
    try:
        train(load_dataset(data), out, replace(cfg, device=device), dist=ctx)
    finally:
        dist.destroy_process_group()


def spawn_train(nproc: int, data: str, out: str, cfg: Any) -> None:
    """Train with ``nproc`` processes on this machine (torch.multiprocessing spawn, env:// on a free port).
    A process's failure ends the others; its last error line is raised here as one line."""
    import torch.multiprocessing as mp

    from fashionsearchnet.errors import TrainingError

    port = free_port()
    try:
        mp.spawn(_worker, args=(nproc, port, str(data), str(out), cfg, logging.getLogger().getEffectiveLevel()),
                 nprocs=nproc, join=True)
    except mp.ProcessRaisedException as e:
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        raise TrainingError(f"--nproc {nproc}: a training process failed: {lines[-1] if lines else e}") from None
    except mp.ProcessExitedException as e:
        raise TrainingError(f"--nproc {nproc}: a training process ended without finishing ({e}); rerun the same "
                            f"command to resume from the last state") from None
