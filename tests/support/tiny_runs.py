"""A randomly initialised tiny-preset run folder (no training): what export tests quantise and compare."""
from __future__ import annotations

from pathlib import Path


def tiny_run(root: Path, data: Path, record_data: bool = True, seed: int = 0) -> Path:
    """``root/fsn/checkpoint.pt`` on the schema of ``data`` (recording ``data``, which int8 calibrates on)."""
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    Checkpoint.untrained(load_dataset(data).schema, PRESETS["tiny"], "fsn", seed, 0.3,
                         data=str(data) if record_data else None).save(Path(root) / "fsn" / "checkpoint.pt")
    return Path(root)
