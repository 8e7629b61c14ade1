"""Exact or approximate: which search a gallery runs for one request (measured in benchmarks/perf/bench_gallery.py).

Small galleries and ``exact=True`` use exact search (float32 screening + float64 re-scoring). A filter keeping
under FILTER_EXACT_BELOW of the gallery is searched exactly over the kept rows; otherwise the indices are asked
and post-filtered. Region requests (fsn bundles, section 4.4) are searched exactly below REGION_EXACT_BELOW.
"""
from __future__ import annotations

from fashionsearchnet.gallery.files import ANN_METHODS

EXACT_BELOW = 2000  # galleries (or filtered subsets) this small are searched exactly
FILTER_EXACT_BELOW = 0.1  # a filter keeping less than this fraction of the gallery: exact search over the kept rows
# exact fsn_region reads every stored representation (~0.38 ms per 1k items, no cached global features), the
# approximate one costs ~8-13 ms (hnsw k=1500): measured 3.7 vs 8.3 ms at 20k items, 28-38 vs 9-13 ms at 100k
REGION_EXACT_BELOW = 30_000


def gallery_method(bundle_method: str, region_pairs: int) -> str:
    """The search method of a gallery: an fsn bundle's gallery with region representations searches as
    ``fsn_region`` (region requests get section 4.4, plain ones fsn: ``search.scorers.effective_method``)."""
    return "fsn_region" if bundle_method == "fsn" and region_pairs > 0 else bundle_method


def use_exact(method: str, has_indices: bool, allowed: int, size: int, filtered: bool, exact: bool | None) -> bool:
    """Whether to search exactly: ``allowed`` rows pass the filters out of ``size`` searchable items."""
    if not has_indices or method not in ANN_METHODS + ("fsn_region",):
        return True  # the attribute baseline has no approximate index
    small = allowed <= (REGION_EXACT_BELOW if method == "fsn_region" else EXACT_BELOW) or (
        filtered and allowed < FILTER_EXACT_BELOW * size)  # a small kept fraction: exact beats walking the graph
    return exact if exact is not None else small
