"""``fsn eval BUNDLE DATA``: the search protocols through the runtime (FeatureExtractor) and exact search, with
the same JSON shape as the PyTorch reference evaluation of a run folder (training/evaluate.py); both build
their searchers with evaluation/searchers.py.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import BundleError
from fashionsearchnet.evaluation.figures import MethodFeatures
from fashionsearchnet.evaluation.protocol import evaluate
from fashionsearchnet.evaluation.searchers import Bars, eval_rows, searchers_of
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.table import FeatureTable

log = logging.getLogger(__name__)


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file()


def bundle_features(bundle_path: str | Path, dataset: Dataset, backend: str = "auto", batch_size: int = 32,
                    bars: Bars | None = None, region_weight: float | None = None) -> dict[str, MethodFeatures]:
    """{the bundle's method: its features of ``dataset``'s gallery and query rows (every row's table, zeros
    elsewhere), SearchParams and ROI boxes}; ``region_weight`` overrides the bundle's fsn_region down-weight."""
    from fashionsearchnet.runtime.bundle import Bundle
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    bundle = Bundle.open(bundle_path)
    diff = bundle.schema.difference(dataset.schema)
    if diff:
        raise BundleError(f"{bundle_path}: the bundle's schema differs from {dataset.root}'s ({diff}); evaluate on "
                          "data with the bundle's schema")
    rows = eval_rows(dataset)
    paths = [str(dataset.images[i]) for i in rows]
    with FeatureExtractor(bundle, backend=backend) as fx:
        if bars is None:
            f = fx.extract(paths, batch_size=batch_size)
        else:
            with bars(len(paths), f"{bundle.method}: features") as adv:
                f = fx.extract(paths, batch_size=batch_size, progress=adv)
    params = bundle.params
    if region_weight is not None:
        params = dataclasses.replace(params, region_weight=float(region_weight))
    part = np.concatenate([f.attr_boxes, f.region_boxes], axis=1)
    boxes = np.zeros((len(dataset),) + part.shape[1:], np.float32)
    boxes[rows] = part
    hw = tuple(int(x) for x in f.aams.shape[-2:]) if len(f) else None
    return {bundle.method: MethodFeatures(params, FeatureTable.scatter(len(dataset), rows, f.to_table()), boxes, hw)}


def bundle_searchers(bundle_path: str | Path, dataset: Dataset, backend: str = "auto", batch_size: int = 32,
                     bars: Bars | None = None, region_weight: float | None = None) -> dict[str, ExactSearcher]:
    """{method name: ExactSearcher} over the bundle's features of ``dataset`` (fsn also as fsn_region);
    ``region_weight`` overrides the bundle's fsn_region down-weight."""
    return searchers_of(bundle_features(bundle_path, dataset, backend, batch_size, bars, region_weight))


def evaluate_bundle(bundle_path: str | Path, dataset: Dataset, protocols: Sequence[str] | None = None, seed: int = 0,
                    max_queries: int | None = None, backend: str = "auto", bars: Bars | None = None,
                    region_weight: float | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``evaluation.protocol.evaluate`` for a bundle: {protocol: {method: {top1.., n}}} (protocols None: every
    protocol and figure the data support)."""
    features = bundle_features(bundle_path, dataset, backend=backend, bars=bars, region_weight=region_weight)
    return evaluate(dataset, searchers_of(features), protocols=protocols, seed=seed, max_queries=max_queries,
                    features=features)
