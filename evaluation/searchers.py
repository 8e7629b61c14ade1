"""The evaluation's searchers from extracted features: one path for the PyTorch reference evaluation of a run
(training/evaluate.py) and the bundle evaluation (evaluation/bundle.py).

Features are extracted for the gallery and query rows only (:func:`eval_rows`) and scattered into a table of
every dataset row (``FeatureTable.scatter``: the training rows stay zeros; the protocols never search them). A method ``fsn`` is evaluated both as ``fsn`` and as ``fsn_region``
(section 3.4 / 4.4).
"""
from __future__ import annotations

from typing import Callable, ContextManager, Mapping

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.evaluation.figures import MethodFeatures
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable

Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]


def eval_rows(dataset: Dataset) -> np.ndarray:
    """The dataset rows the protocols search and query: gallery and query splits, sorted."""
    return np.union1d(dataset.indices("gallery"), dataset.indices("query"))


def method_names(method: str) -> tuple[str, ...]:
    """The searchers a trained method gives: ``fsn`` -> fsn and fsn_region; any other -> itself."""
    return ("fsn", "fsn_region") if method == "fsn" else (method,)


def exact_searchers(params: SearchParams, table: FeatureTable, method: str) -> dict[str, ExactSearcher]:
    """{name: ExactSearcher} of a trained ``method`` over ``table`` (every dataset row)."""
    return {name: ExactSearcher(params, table, method=name) for name in method_names(method)}


def searchers_of(features: Mapping[str, MethodFeatures]) -> dict[str, ExactSearcher]:
    """{name: ExactSearcher} of every trained method's features (fsn also as fsn_region)."""
    out: dict[str, ExactSearcher] = {}
    for method, f in features.items():
        out.update(exact_searchers(f.params, f.table, method))
    return out
