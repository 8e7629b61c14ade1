"""The settings of one training command (``fsn train``), checked when made, and what a resumed run must keep."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import DEFAULT_REGION_WEIGHT
from fashionsearchnet.training.model import canonical_method
from fashionsearchnet.training.presets import get_preset
from fashionsearchnet.training.triplets import GLOBAL_NEGATIVES


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
