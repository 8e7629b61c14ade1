"""The feature table a search reads: per-image attribute and region representations and class probabilities."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from fashionsearchnet.errors import UsageError

CHUNK = 16384  # rows per block of a pass over the table (bounds the float64 temporaries)


@dataclass
class FeatureTable:
    """Per-image features: attr_reps (N, A, D), region_reps (N, P, D), probs (N, sum C_a), all float32.

    Treat as immutable once searched: derived arrays (squared norms, N floats per space) are cached on the table.
    """

    attr_reps: np.ndarray
    region_reps: np.ndarray
    probs: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.attr_reps = np.ascontiguousarray(self.attr_reps, dtype=np.float32)
        self.probs = np.ascontiguousarray(self.probs, dtype=np.float32)
        n = self.attr_reps.shape[0]
        if self.region_reps is None:
            self.region_reps = np.zeros((n, 0, self.attr_reps.shape[2]), np.float32)
        self.region_reps = np.ascontiguousarray(self.region_reps, dtype=np.float32)
        if self.attr_reps.ndim != 3 or self.region_reps.ndim != 3 or self.probs.ndim != 2:
            raise UsageError(
                f"FeatureTable: attr_reps {self.attr_reps.shape}, region_reps {self.region_reps.shape}, probs "
                f"{self.probs.shape}; expected (N, A, D), (N, P, D), (N, sumC)"
            )
        if not (self.region_reps.shape[0] == self.probs.shape[0] == n):
            raise UsageError(
                f"FeatureTable: row counts differ (attr_reps {n}, region_reps {self.region_reps.shape[0]}, "
                f"probs {self.probs.shape[0]}); give one row per image in each"
            )

    def __len__(self) -> int:
        return int(self.attr_reps.shape[0])

    def take(self, rows: Sequence[int] | np.ndarray) -> "FeatureTable":
        rows = np.asarray(rows, dtype=np.int64)
        return FeatureTable(self.attr_reps[rows], self.region_reps[rows], self.probs[rows])

    @classmethod
    def concat(cls, tables: Sequence["FeatureTable"]) -> "FeatureTable":
        return cls(
            np.concatenate([t.attr_reps for t in tables]),
            np.concatenate([t.region_reps for t in tables]),
            np.concatenate([t.probs for t in tables]),
        )

    @classmethod
    def scatter(cls, n: int, rows: np.ndarray, part: "FeatureTable") -> "FeatureTable":
        """A table of ``n`` rows holding ``part``'s rows at ``rows`` and zeros elsewhere (the evaluations extract
        gallery and query rows only; the protocols never search the others)."""
        rows = np.asarray(rows, dtype=np.int64)

        def full(v: np.ndarray) -> np.ndarray:
            arr = np.zeros((n,) + v.shape[1:], np.float32)
            arr[rows] = v
            return arr

        return cls(full(part.attr_reps), full(part.region_reps), full(part.probs))

    def cached(self, key: tuple, owner: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        """``make()`` once per ``key`` (recomputed when ``owner``, e.g. the SearchParams it depends on, changes)."""
        hit = self._cache.get(key)
        if hit is None or hit[0] is not owner:
            hit = (owner, make())
            self._cache[key] = hit
        return hit[1]

    def rep_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """Squared norms (N, A) and (N, P) in float64 of every representation, cached."""
        def make():
            n = len(self)
            an = np.empty((n, self.attr_reps.shape[1]), np.float64)
            rn = np.empty((n, self.region_reps.shape[1]), np.float64)
            for s in range(0, n, CHUNK):  # chunks bound the float64 temporaries
                an[s:s + CHUNK] = (self.attr_reps[s:s + CHUNK].astype(np.float64) ** 2).sum(-1)
                rn[s:s + CHUNK] = (self.region_reps[s:s + CHUNK].astype(np.float64) ** 2).sum(-1)
            return an, rn

        return self.cached(("norms",), None, make)
