"""Summaries over training seeds: median, min and max of each figure, and of the paired (same-seed) differences
between fsn and each other method. Pure functions; used by real_seeds.py and seed_summary.py."""
from __future__ import annotations

import statistics
from typing import Iterable, Mapping


def spread(vals: list[float]) -> dict:
    """Median, min, max and the values of one figure over seeds."""
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "values": vals}


def summarise(per_seed: Mapping[int, dict], protocols: Iterable[str], methods: Iterable[str],
              others: Iterable[str], ks: Iterable[int] = (1, 30), of: str = "fsn") -> dict:
    """``per_seed[seed][protocol][method]["top<k>"]`` -> {"methods": {"p/m/topk": stats},
    "differences": {"p/<of>-<other>/topk": stats}}; each difference is taken within a seed, then summarised."""
    out: dict = {"methods": {}, "differences": {}}
    seeds = sorted(per_seed)
    protocols, methods, others, ks = list(protocols), list(methods), list(others), list(ks)
    for p in protocols:
        for m in methods:
            for k in ks:
                out["methods"][f"{p}/{m}/top{k}"] = spread([per_seed[s][p][m][f"top{k}"] for s in seeds])
        for other in others:
            for k in ks:
                vals = [per_seed[s][p][of][f"top{k}"] - per_seed[s][p][other][f"top{k}"] for s in seeds]
                out["differences"][f"{p}/{of}-{other}/top{k}"] = spread(vals)
    return out


def cell(d: dict) -> str:
    """``median (min to max)`` with one decimal ("to", not a dash: the bounds may be negative)."""
    return f"{d['median']:.1f} ({d['min']:.1f} to {d['max']:.1f})"
