"""Seeds: a stage's batch order per epoch from (seed, stage, epoch), each step's draws from (seed, stage, epoch,
step), so that a resumed run draws the same batches, triplets and dropout masks as an uninterrupted one."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def seed_all(*parts: int) -> np.random.Generator:
    """Seed torch (dropout, init) and return a numpy generator, both from the tuple ``parts``."""
    ss = np.random.SeedSequence([int(p) for p in parts])
    torch.manual_seed(int(ss.generate_state(1, np.uint64)[0] % (2**63)))
    return np.random.default_rng(ss)


@dataclass(frozen=True)
class SeededBatches:
    """The mini-batches of one stage: each epoch, a permutation of the ``n`` training rows seeded from
    (seed, stage, epoch), cut into ``steps`` batches of ``batch`` rows (the last one may be shorter).

    The training loop asks only for :attr:`steps` and :meth:`epoch`, so that a sampler that gives each process
    of a data-parallel run its share of the same order can take this one's place.
    """

    n: int
    batch: int
    seed: int
    stage: int

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.n / self.batch))

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The row indices of every step of ``epoch``, in order."""
        perm = np.random.default_rng([self.seed, self.stage, epoch]).permutation(self.n)
        return [perm[step * self.batch:(step + 1) * self.batch] for step in range(self.steps)]
