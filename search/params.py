"""What a search needs from a trained model (:class:`SearchParams`) and its file, ``params.npz``.

``params.npz`` holds ``prototypes_<a>`` (C_a, D) per attribute, ``lam`` (A+1, A) and ``W`` (A+1, A*D, G), and
optionally ``region_prototypes_<region>:<attr>`` (C_attr, D): the mean region-specific representation of each value
of a region pair (absent in bundles written before issue 17: region requests then use the image-level ones), and
``region_terms`` / ``region_pair_scales`` (:class:`RegionTerms`, fsn_region's calibrated weights and scales); a
bundle and a gallery generation each carry one. :func:`load_params` is the one reader (every check, one
error naming the file and the fix); :func:`save_params` the one writer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import BundleError, FSNError, UsageError

PARAMS_FILE = "params.npz"
REGION_PREFIX = "region_prototypes_"
TERMS_KEY, SCALES_KEY = "region_terms", "region_pair_scales"

# fsn_region's down-weight of the representations a region request does not touch (section 4.4; the paper gives
# no value). Chosen on a validation split of the training rows (benchmarks/experiments/region_weight/region_weight.py): 0.5 on the
# 20k-image synthetic run (0.5-1.0 tie; 0.3, the first guess, loses 1.4 points of validation Top-30).
DEFAULT_REGION_WEIGHT = 0.5
# composed queries (no image, search/compose.py): what the attributes a shopper leaves unset do; chosen on a
# validation split of training rows (benchmarks/experiments/compose/compose.py): omit, fsn prec@10 54.0 vs 32.2
# for neutral on the 8k synthetic run (results/synth_heldout1500_edge8k_fsn.md; 14.2 vs 13.5 on a small one)
COMPOSE_UNSET_MODES = ("omit", "neutral")
DEFAULT_COMPOSE_UNSET = "omit"


@dataclass(frozen=True)
class RegionTerms:
    """fsn_region's region-specific terms (search/scorers.py ``RegionScorer``), chosen by ``fsn calibrate``.

    ``weight``: a requested non-primary pair (collar, sleeve); ``primary_weight``: a requested primary-region pair
    (torso; 0 = fsn's scoring for those); pairs a request does not touch weigh ``region_weight x weight``. Each
    term is divided by its ``pair_scales`` entry and the global distance by ``global_scale`` (typical squared
    distances, so that the weights do not depend on the spaces' scales). In ``params.npz``: ``region_terms``
    [weight, primary_weight, global_scale] and ``region_pair_scales`` (P,)."""

    weight: float
    primary_weight: float
    global_scale: float
    pair_scales: np.ndarray  # (P,) float64

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair_scales", np.asarray(self.pair_scales, np.float64).reshape(-1))
        vals = (self.weight, self.primary_weight, self.global_scale, *self.pair_scales.tolist())
        if not all(np.isfinite(v) for v in vals) or self.weight < 0 or self.primary_weight < 0 or \
                self.global_scale <= 0 or (self.pair_scales <= 0).any():
            raise UsageError(f"RegionTerms: weights must be >= 0 and scales > 0 (finite), got weight {self.weight}, "
                             f"primary_weight {self.primary_weight}, global_scale {self.global_scale}, pair_scales "
                             f"{self.pair_scales.tolist()}")

    def arrays(self) -> dict[str, np.ndarray]:
        return {TERMS_KEY: np.array([self.weight, self.primary_weight, self.global_scale], np.float64),
                SCALES_KEY: self.pair_scales.astype(np.float64)}


@dataclass
class SearchParams:
    """What a search needs from a trained model: prototypes (C_a, D) per attribute, lam (A+1, A), W (A+1, A*D, G)."""

    schema: Schema
    prototypes: list[np.ndarray]
    lam: np.ndarray
    W: np.ndarray
    region_weight: float = DEFAULT_REGION_WEIGHT
    region_prototypes: dict[str, np.ndarray] = field(default_factory=dict)  # "region:attr" -> (C_attr, D)
    region_terms: RegionTerms | None = None  # fsn_region's calibrated terms (None: ``default_region_terms``)
    compose_unset: str = DEFAULT_COMPOSE_UNSET  # composed queries: unset attributes "omit" or "neutral"

    def __post_init__(self) -> None:
        A = len(self.schema.attributes)
        if len(self.prototypes) != A:
            raise UsageError(f"SearchParams.prototypes: {len(self.prototypes)} arrays for {A} attributes; give one per attribute")
        for a, (p, attr) in enumerate(zip(self.prototypes, self.schema.attributes)):
            if p.ndim != 2 or p.shape[0] != len(attr.values):
                raise UsageError(
                    f"SearchParams.prototypes[{a}] ({attr.name}): shape {p.shape}, expected ({len(attr.values)}, D)"
                )
        self.lam = np.asarray(self.lam)
        self.W = np.asarray(self.W)
        D = self.prototypes[0].shape[1]
        if self.lam.shape != (A + 1, A):
            raise UsageError(f"SearchParams.lam: shape {self.lam.shape}, expected ({A + 1}, {A})")
        if self.W.ndim != 3 or self.W.shape[:2] != (A + 1, A * D):
            raise UsageError(f"SearchParams.W: shape {self.W.shape}, expected ({A + 1}, {A * D}, G)")
        if not 0.0 <= float(self.region_weight) <= 1.0:
            raise UsageError(f"SearchParams.region_weight = {self.region_weight}: must be in [0, 1]")
        if self.compose_unset not in COMPOSE_UNSET_MODES:
            raise UsageError(f"SearchParams.compose_unset = {self.compose_unset!r}: valid {', '.join(COMPOSE_UNSET_MODES)}")
        pairs = {f"{r}:{a}": a for r, a in self.schema.region_pairs}
        for key, p in self.region_prototypes.items():
            if key not in pairs:
                raise UsageError(f"SearchParams.region_prototypes[{key!r}]: not a region pair of the schema; "
                                 f"valid: {', '.join(pairs) or 'none'}")
            n = len(self.schema.attributes[self.schema.attr_index(pairs[key])].values)
            if p.ndim != 2 or p.shape != (n, D):
                raise UsageError(f"SearchParams.region_prototypes[{key!r}]: shape {p.shape}, expected ({n}, {D})")

        if self.region_terms is not None and len(self.region_terms.pair_scales) != len(self.schema.region_pairs):
            raise UsageError(f"SearchParams.region_terms: {len(self.region_terms.pair_scales)} pair scales for "
                             f"{len(self.schema.region_pairs)} region pairs")

    @property
    def dim(self) -> int:
        return int(self.prototypes[0].shape[1])

    @property
    def global_dim(self) -> int:
        return int(self.W.shape[2])

    def region_prototype(self, region: str, attr: str) -> np.ndarray:
        """(C_attr, D) prototypes a request on ``region:attr`` substitutes: the region-specific ones where the
        bundle has them, else the attribute's image-level ones."""
        key = f"{region}:{attr}"
        if key in self.region_prototypes:
            return self.region_prototypes[key]
        return self.prototypes[self.schema.attr_index(attr)]

    def arrays(self) -> dict[str, np.ndarray]:
        """The ``params.npz`` arrays: ``prototypes_<a>``, ``lam``, ``W``, ``region_prototypes_<region>:<attr>``."""
        return {**{f"prototypes_{a}": p for a, p in enumerate(self.prototypes)}, "lam": self.lam, "W": self.W,
                **{f"{REGION_PREFIX}{k}": p for k, p in self.region_prototypes.items()},
                **(self.region_terms.arrays() if self.region_terms is not None else {})}


def save_params(f: str | Path | IO[bytes], arrays: SearchParams | Mapping[str, np.ndarray]) -> None:
    """Write ``params.npz`` (from SearchParams or its :meth:`SearchParams.arrays`)."""
    if isinstance(arrays, SearchParams):
        arrays = arrays.arrays()
    np.savez(f, **arrays)


def load_params(path: str | Path, schema: Schema, region_weight: float | None = None,
                error: type[FSNError] = BundleError, fix: str = "re-export the bundle") -> SearchParams:
    """Load ``params.npz`` and check it against ``schema``; ``error`` (naming the file and ``fix``) otherwise.

    ``region_weight`` None (a file written before the weight was stored) -> :data:`DEFAULT_REGION_WEIGHT`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise error(f"{path}: cannot read ({e}); {fix}") from None
    A = len(schema.attributes)
    protos = []
    for a, attr in enumerate(schema.attributes):
        key = f"prototypes_{a}"
        if key not in arrays:
            raise error(f"{path}: array {key!r} (attribute {attr.name!r}) is missing; {fix}")
        p = arrays[key].astype(np.float32)
        if p.ndim != 2 or p.shape[0] != len(attr.values):
            raise error(f"{path}: {key} has shape {p.shape}, expected ({len(attr.values)}, D) for attribute "
                        f"{attr.name!r}; {fix}")
        protos.append(p)
    for key in ("lam", "W"):
        if key not in arrays:
            raise error(f"{path}: array {key!r} is missing; {fix}")
    lam, W = arrays["lam"].astype(np.float32), arrays["W"].astype(np.float32)
    D = protos[0].shape[1]
    if lam.shape != (A + 1, A):
        raise error(f"{path}: lam has shape {lam.shape}, expected ({A + 1}, {A}); {fix}")
    if W.ndim != 3 or W.shape[:2] != (A + 1, A * D):
        raise error(f"{path}: W has shape {W.shape}, expected ({A + 1}, {A * D}, G); {fix}")
    weight = DEFAULT_REGION_WEIGHT if region_weight is None else float(region_weight)
    if not 0.0 <= weight <= 1.0:
        raise error(f"{path}: region_weight {weight} is outside [0, 1]; {fix}")
    regional = {k[len(REGION_PREFIX):]: v.astype(np.float32) for k, v in arrays.items() if k.startswith(REGION_PREFIX)}
    terms = None
    if TERMS_KEY in arrays or SCALES_KEY in arrays:
        t, sc = arrays.get(TERMS_KEY), arrays.get(SCALES_KEY)
        if t is None or sc is None or t.shape != (3,):
            raise error(f"{path}: {TERMS_KEY} (3,) and {SCALES_KEY} (P,) must both be present; {fix}")
        try:
            terms = RegionTerms(float(t[0]), float(t[1]), float(t[2]), sc)
        except UsageError as e:
            raise error(f"{path}: {e}; {fix}") from None
    try:
        return SearchParams(schema, protos, lam, W, weight, regional, terms)
    except UsageError as e:
        raise error(f"{path}: {e}; {fix}") from None
