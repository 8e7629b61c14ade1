"""How ``fsn serve`` groups uploads for the model (``--max-batch``, ``--max-wait-ms``); the batcher itself is
app/server/batcher.py. Kept apart so the CLI can show the defaults without importing the web stack."""
from __future__ import annotations

from dataclasses import dataclass

from fashionsearchnet.errors import UsageError

DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_WAIT_MS = 2.0


@dataclass(frozen=True)
class BatchPolicy:
    """How many items one model run takes at most, and how long the oldest queued item may wait for others."""

    max_batch: int = DEFAULT_MAX_BATCH
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS

    def __post_init__(self) -> None:
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or not 1 <= self.max_batch <= 1024:
            raise UsageError(f"--max-batch {self.max_batch!r}: give a whole number 1..1024 (1 turns batching off)")
        w = self.max_wait_ms
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1000:  # NaN fails too
            raise UsageError(f"--max-wait-ms {w!r}: give a number of milliseconds 0..1000")


def parse_policy(max_batch: str | int, max_wait_ms: str | float) -> BatchPolicy:
    """``fsn serve --max-batch N --max-wait-ms MS`` as given on the command line -> BatchPolicy (UsageError, one
    line, for anything else than a whole number 1..1024 and a finite number of milliseconds 0..1000)."""
    try:
        mb = int(str(max_batch).strip())
    except ValueError:
        raise UsageError(f"--max-batch {max_batch!r}: give a whole number 1..1024 (1 turns batching off)") from None
    try:
        mw = float(str(max_wait_ms).strip())
    except ValueError:
        raise UsageError(f"--max-wait-ms {max_wait_ms!r}: give a number of milliseconds 0..1000") from None
    return BatchPolicy(mb, mw)
