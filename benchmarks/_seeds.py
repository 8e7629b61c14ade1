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


def method_rows(per_seed: Mapping[int, dict], summ: dict, protocols: Iterable[str], methods: Iterable[str],
                ks: Iterable[int]) -> list[str]:
    """Markdown rows ``| protocol | method | top.. | n |`` of :func:`summarise`'s medians (n per seed)."""
    ks, seeds, rows = list(ks), sorted(per_seed), []
    for p in protocols:
        for m in methods:
            n = "/".join(str(per_seed[s][p][m]["n"]) for s in seeds)
            rows.append(f"| {p} | {m} | " + " | ".join(cell(summ["methods"][f"{p}/{m}/top{k}"]) for k in ks)
                        + f" | {n} |")
    return rows


def differences_section(summ: dict, protocols: Iterable[str], others: Iterable[str], ks: Iterable[int]) -> list[str]:
    """The markdown section of same-seed fsn − other differences (empty when there are none)."""
    ks, others = list(ks), list(others)
    if not summ["differences"] or not others:
        return []
    md = ["", "Same-seed differences, median (min to max):", "",
          "| protocol | difference | " + " | ".join(f"top{k}" for k in ks) + " |", "|---|---|" + "---|" * len(ks)]
    for p in protocols:
        for o in others:
            md.append(f"| {p} | fsn − {o} | " + " | ".join(cell(summ["differences"][f"{p}/fsn-{o}/top{k}"])
                                                         for k in ks) + " |")
    return md
