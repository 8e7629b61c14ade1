"""Composed queries: a request with no query image ("a red dress with long sleeves", issue 24).

The described attributes take their value's prototype (the mean representation of training images with that
value); the attributes a shopper leaves unset are handled by :data:`UNSET_MODES`:

- ``omit``: left out of the distance. ``fsn`` / ``no_aam``: the global representation of eq. 7 over the set
  attributes only (``lam`` zeroed for the others, on the query and the gallery side alike), in the weight set of
  each set attribute (several: the mean of the squared distances, as for manipulations); ``fsn_region``: that
  global term over the image-level values it changes (``set`` and primary-region requests) plus the requested
  region pairs' terms (untouched pairs weigh 0).
- ``neutral``: every unset attribute (and region pair) takes the mean of its value prototypes, and the request is
  scored like a manipulation of that neutral query (unset representations keep fsn_region's ``region_weight``).

``attribute`` (the baseline) ranks by the predicted probabilities of the described values: the distance is
``-sum log p_a(v_a)`` (the joint probability under independent heads; unset attributes do not enter).

Which mode is the default (:data:`DEFAULT_UNSET`) was measured on a validation split carved from training rows
(benchmarks/experiments/compose/compose.py); ``SearchParams.compose_unset`` overrides it per search.
The distances are built from the search core's own scorers (one piece of logic per method), so exact and
approximate search, filters and ``k`` work unchanged: a composed query is a search whose query is ``None``.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import RequestError, UsageError
from fashionsearchnet.search.params import COMPOSE_UNSET_MODES as UNSET_MODES
from fashionsearchnet.search.params import DEFAULT_COMPOSE_UNSET as DEFAULT_UNSET
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.request import Request, image_level
from fashionsearchnet.search.table import FeatureTable

LOG_FLOOR = 1e-12  # attribute baseline: probabilities are floored here before the log (a softmax can round to 0)
SCREEN_TOL = 1e-6  # attribute baseline: float32 screen margin, relative to the distances


__all__ = ["DEFAULT_UNSET", "UNSET_MODES", "LogProbScorer", "composed_reps", "composed_scorer", "neutral_table",
           "omit_params", "require_description"]


def check_unset(mode: str) -> str:
    if mode not in UNSET_MODES:
        raise UsageError(f"compose unset mode {mode!r}: valid {', '.join(UNSET_MODES)}")
    return mode


def require_description(request: Request, schema: Schema, source: str = "--set") -> None:
    """A composed query needs at least one described value: RequestError (listing the attributes) otherwise."""
    if request.is_empty:
        raise RequestError(
            f"no query: give a query image or item id, or describe the item with {source} attr=value "
            f"(e.g. {schema.names[0]}={schema.attributes[0].values[0]}); valid attributes: {', '.join(schema.names)}",
            "", {"attributes": list(schema.names)})


def neutral_table(params: SearchParams) -> FeatureTable:
    """One row: every attribute representation the mean of its value prototypes, every region pair the mean of
    its (region-specific where the bundle has them) prototypes; probabilities uniform."""
    schema = params.schema
    attr = np.stack([p.astype(np.float64).mean(0) for p in params.prototypes]).astype(np.float32)
    region = [params.region_prototype(r, a).astype(np.float64).mean(0) for r, a in schema.region_pairs]
    reg = np.stack(region).astype(np.float32) if region else np.zeros((0, params.dim), np.float32)
    probs = np.concatenate([np.full(len(a.values), 1.0 / len(a.values), np.float32) for a in schema.attributes])
    return FeatureTable(attr[None], reg[None], probs[None])


def composed_reps(params: SearchParams, request: Request) -> np.ndarray:
    """(A, D) float32: the neutral row with the request's image-level values (region requests mapped to their
    attribute, image-level and primary-region ones first) substituted by their prototypes: the query the
    approximate search asks the hnsw indices with."""
    reps = neutral_table(params).attr_reps[0].copy()
    for a, v in candidate_values(request, params.schema).items():
        reps[a] = params.prototypes[a][v]
    return reps


def candidate_values(request: Request, schema: Schema) -> dict[int, int]:
    """Image-level {attribute: value} the approximate search asks the hnsw indices with: every described value,
    region requests mapped to their attribute. With no photo there is no torso to keep, and a part's colour is
    mostly what the global space holds of it (measured: region representations sit nearest the torso's value),
    so this finds the candidates the exact composed distance ranks first."""
    return image_level(request, schema)


def omit_params(params: SearchParams, described: Iterable[int]) -> SearchParams:
    """``params`` with ``lam`` zeroed for every attribute not in ``described`` (attribute indices; all weight sets)."""
    keep = np.zeros(len(params.schema.attributes), np.float32)
    keep[list(described)] = 1.0
    return dataclasses.replace(params, lam=params.lam * keep[None, :])


class LogProbScorer:
    """``attribute`` composed: ``-sum_a log p_a(v_a)`` over the described values (smaller = more probable)."""

    def __init__(self, params: SearchParams, request: Request):
        offsets = params.schema.class_offsets
        self.cols = np.asarray([offsets[a] + v for a, v in sorted(image_level(request, params.schema).items())],
                               np.int64)

    def score(self, gallery: FeatureTable, rows: np.ndarray) -> np.ndarray:
        p = gallery.probs[np.asarray(rows, np.int64)][:, self.cols].astype(np.float64)
        return (-np.log(np.maximum(p, LOG_FLOOR))).sum(1)[None, :]

    def screen(self, gallery: FeatureTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.score(gallery, rows)
        return d.astype(np.float32), SCREEN_TOL * (1.0 + np.abs(d).max(1, initial=0.0))


def composed_scorer(params: SearchParams, request: Request, method: str):
    """The scorer of a composed query (no image) under ``method`` (one of ``scorers.METHODS``)."""
    from fashionsearchnet.search.scorers import GlobalScorer, RegionScorer, check_method, region_plan

    check_method(method)
    require_description(request, params.schema)
    mode = check_unset(params.compose_unset)
    if method == "attribute":
        return LogProbScorer(params, request)
    table = neutral_table(params)
    if method == "fsn_region":  # fsn_region's global term changes the image-level (set and torso) values only
        if mode == "neutral":
            return RegionScorer(params, table, request)
        described = region_plan(request, params.schema).attr_subst
        return RegionScorer(dataclasses.replace(params, region_weight=0.0), table, request,
                            global_params=omit_params(params, described))
    described = image_level(request, params.schema)
    return GlobalScorer(omit_params(params, described) if mode == "omit" else params, table, request)
