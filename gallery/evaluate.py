"""``fsn eval BUNDLE DATA``: the search protocols through the runtime (FeatureExtractor) and the gallery's
exact search, with the same JSON shape as the PyTorch reference evaluation of a run folder.

Features are extracted for gallery and query rows only (training rows stay zeros; the protocols never search
them). An ``fsn`` bundle is evaluated as ``fsn`` and as ``fsn_region``, like a run.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import BundleError
from fashionsearchnet.gallery.indexer import search_params
from fashionsearchnet.gallery.scoring import ExactSearcher, FeatureTable

log = logging.getLogger(__name__)
Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file()


def bundle_searchers(bundle_path: str | Path, dataset: Dataset, backend: str = "auto", batch_size: int = 32,
                     bars: Bars | None = None, region_weight: float | None = None) -> dict[str, ExactSearcher]:
    """{method name: ExactSearcher} over the bundle's features of ``dataset`` (fsn also as fsn_region);
    ``region_weight`` overrides the bundle's fsn_region down-weight."""
    from fashionsearchnet.runtime.bundle import Bundle
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    bundle = Bundle.open(bundle_path)
    if bundle.schema.to_dict() != dataset.schema.to_dict():
        raise BundleError(
            f"{bundle_path}: the bundle's schema (attributes {', '.join(bundle.schema.names)}) differs from "
            f"{dataset.root}'s ({', '.join(dataset.schema.names)}); evaluate on data with the bundle's schema"
        )
    rows = np.union1d(dataset.indices("gallery"), dataset.indices("query"))
    paths = [str(dataset.images[i]) for i in rows]
    with FeatureExtractor(bundle, backend=backend) as fx:
        if bars is None:
            f = fx.extract(paths, batch_size=batch_size)
        else:
            with bars(len(paths), f"{bundle.method}: features") as adv:
                f = fx.extract(paths, batch_size=batch_size, progress=adv)
    full: dict[str, np.ndarray] = {}
    for name, v in (("attr_reps", f.attr_reps), ("region_reps", f.region_reps), ("probs", f.probs)):
        arr = np.zeros((len(dataset),) + v.shape[1:], np.float32)
        arr[rows] = v
        full[name] = arr
    table = FeatureTable(full["attr_reps"], full["region_reps"], full["probs"])
    params = search_params(bundle)
    if region_weight is not None:
        params = dataclasses.replace(params, region_weight=float(region_weight))
    names = ("fsn", "fsn_region") if bundle.method == "fsn" else (bundle.method,)
    return {n: ExactSearcher(params, table, method=n) for n in names}


def evaluate_bundle(bundle_path: str | Path, dataset: Dataset, protocols: Sequence[str] | None = None, seed: int = 0,
                    max_queries: int | None = None, backend: str = "auto", bars: Bars | None = None,
                    region_weight: float | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``evaluation.protocol.evaluate`` for a bundle: {protocol: {method: {top1.., n}}}."""
    from fashionsearchnet.evaluation.protocol import PROTOCOLS, evaluate

    searchers = bundle_searchers(bundle_path, dataset, backend=backend, bars=bars, region_weight=region_weight)
    return evaluate(dataset, searchers, protocols=tuple(protocols or PROTOCOLS), seed=seed, max_queries=max_queries)
