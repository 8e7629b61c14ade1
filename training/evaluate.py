"""Evaluate the trained methods of a run folder through the PyTorch reference path.

Each method's features come from :func:`training.extract.extract` (backbone -> runtime/roi.py -> heads) and
are searched exactly (``search.exact.ExactSearcher``), built by evaluation/searchers.py as for a bundle: every
``fsn`` run is evaluated both as ``fsn`` and as ``fsn_region`` (section 3.4 / 4.4); features are extracted for
gallery and query rows only.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import CheckpointError
from fashionsearchnet.evaluation.figures import MethodFeatures
from fashionsearchnet.evaluation.protocol import evaluate
from fashionsearchnet.evaluation.searchers import Bars, eval_rows, searchers_of
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.training.checkpoint import CHECKPOINT_NAME, check_schema, load_run
from fashionsearchnet.training.extract import extract
from fashionsearchnet.training.model import METHODS

log = logging.getLogger(__name__)


def find_methods(run: str | Path) -> list[str]:
    """Methods with a finished checkpoint in a run folder, in the order attribute, no_aam, fsn."""
    run = Path(run)
    found = [m for m in METHODS if (run / m / CHECKPOINT_NAME).is_file()]
    if not found:
        raise CheckpointError(f"{run}: no finished method (no <method>/{CHECKPOINT_NAME}); run 'fsn train' first "
                              f"or wait for it to finish")
    return found


def _method_arrays(run: str | Path, method: str, dataset: Dataset, rows: np.ndarray, device: str = "cpu",
                   bars: Bars | None = None) -> tuple[dict[str, np.ndarray], Any, dict[str, Any]]:
    """(extract()'s arrays of ``rows``, model, meta) of one trained method."""
    model, meta = load_run(Path(run) / method, device=device)
    check_schema(meta["schema"], dataset.schema, str(meta["path"]))
    if bars is None:
        feats = extract(model, dataset, rows, device=device, roi_choice=meta["roi"])
    else:
        with bars(len(rows), f"{method}: features") as adv:
            feats = extract(model, dataset, rows, device=device, progress=adv, roi_choice=meta["roi"])
    return feats, model, meta


def method_features(run: str | Path, method: str, dataset: Dataset, rows: np.ndarray, device: str = "cpu",
                    bars: Bars | None = None) -> tuple[FeatureTable, Any, dict[str, Any]]:
    """(features of every dataset row, zeros outside ``rows``; model; meta) for one trained method."""
    feats, model, meta = _method_arrays(run, method, dataset, rows, device, bars)
    part = FeatureTable(feats["attr_reps"], feats["region_reps"], feats["probs"])
    return FeatureTable.scatter(len(dataset), rows, part), model, meta


def run_features(run: str | Path, dataset: Dataset, methods: Sequence[str] | None = None, device: str = "cpu",
                 bars: Bars | None = None, region_weight: float | None = None) -> dict[str, MethodFeatures]:
    """{trained method: its features of every dataset row (gallery and query rows extracted), SearchParams and
    ROI boxes}; ``region_weight`` overrides the fsn_region down-weight stored with the run."""
    rows = eval_rows(dataset)
    out: dict[str, MethodFeatures] = {}
    for m in methods or find_methods(run):
        feats, model, meta = _method_arrays(run, m, dataset, rows, device, bars)
        table = FeatureTable.scatter(len(dataset), rows,
                                     FeatureTable(feats["attr_reps"], feats["region_reps"], feats["probs"]))
        params = meta["search_params"]  # with the run's region prototypes and fsn_region terms (issue 17)
        if region_weight is not None:
            params = dataclasses.replace(params, region_weight=region_weight)
        boxes = np.zeros((len(dataset),) + feats["boxes"].shape[1:], np.float32)
        boxes[rows] = feats["boxes"]
        hw = meta["preset"].conv5_size()
        out[m] = MethodFeatures(params, table, boxes, (hw, hw))
    return out


def build_searchers(run: str | Path, dataset: Dataset, methods: Sequence[str] | None = None, device: str = "cpu",
                    bars: Bars | None = None, region_weight: float | None = None) -> dict[str, Any]:
    """{name: ExactSearcher} for every finished method (fsn gives fsn and fsn_region); ``region_weight``
    overrides the fsn_region down-weight stored with the run."""
    return searchers_of(run_features(run, dataset, methods, device, bars, region_weight))


def evaluate_run(run: str | Path, dataset: Dataset, protocols: Sequence[str] | None = None, seed: int = 0,
                 max_queries: int | None = None, methods: Sequence[str] | None = None, device: str = "cpu",
                 bars: Bars | None = None, region_weight: float | None = None) -> dict[str, dict[str, dict]]:
    """``evaluation.protocol.evaluate`` over every trained method of ``run`` on ``dataset`` (protocols None: every
    protocol and figure the data support)."""
    features = run_features(run, dataset, methods, device, bars, region_weight)
    return evaluate(dataset, searchers_of(features), protocols=protocols, seed=seed, max_queries=max_queries,
                    features=features)
