"""The search protocols every method is measured with (torch-free, one module).

A method is a :class:`Searcher`: given query rows, one request per query and the gallery rows, it returns the
dataset rows of its top ``k`` results. The protocols build the (query, request, target) triples from the labels:

- ``query``: plain search; hit = a result with all of the query's known attributes.
- ``manipulation``: for every query, every attribute the query has a label for and every other value of it that
  occurs in the gallery: hit = a result whose labels equal the query's with that attribute changed.
- ``region``: with region truth columns (``sleeve:color``...), change one region's attribute; hit = a result
  that matches the query's image-level labels and region truth after the change (a change of the primary
  region, the torso, also changes the image-level attribute it describes).
- ``region_part``: the ``region`` requests on a non-primary region (collar, sleeve) whose requested value differs
  from the query's primary-region (torso) value of that attribute: the garment becomes two-tone, a genuinely
  regional change. Hit as ``region``, except that a result sharing the query's ``item_id`` (its own colour
  variant) is never a hit; a pair is kept only if a gallery item with another ``item_id`` satisfies it.
- ``region_primary``: the ``region`` requests on the primary region (torso), same hit rule, no item_id exclusion
  (image-level changes phrased as region requests).
- ``region_differ`` / ``region_match`` (not run unless asked for): the ``region`` pairs whose target is a
  two-tone garment (some region's value of the requested attribute differs from the torso's, e.g. red torso
  with green sleeves) / a garment of one colour or pattern. The paper's region-aware search is about the first.
- ``item``: where item_id exists, for every gallery variant of the query's item with other labels, ask for
  those labels; hit = that same item in the requested variant (recall@K).
- ``adde``: the protocol of later papers (ADDE-M): gallery = gallery and query images together, the query image
  stays in the gallery, hit = a result whose label vector equals the target; Top-K and NDCG@K.
- ``compose`` (issue 24, run only when asked for; :func:`evaluate_compose`): no query image; sampled
  combinations of 1-3 attribute values that some gallery item has; hit = an item with all of them; beside the
  methods, the filter-on-predicted-labels baseline (``label_filter``) and the split by that classifier's
  confidence (``compose_low`` / ``_mid`` / ``_high``).

Besides Top-K (at least one hit in the first K), every protocol reports precision@K (``prec<K>``): the share of
the first K results that are hits, averaged over pairs. It is the measure of the paper's region user study (the
share of the Top-5 shown that the volunteers picked); it is only given for K up to the gallery size, and for
``item`` (one right answer) it is at most 100/K.

Matching rule (all protocols): only attributes the target knows are compared, and a result must know them too
(an unknown label never matches). Choice: a (query, request) pair whose target no gallery item satisfies is
left out (it cannot be hit by any method); ``n`` counts the pairs kept. Accuracies are percentages.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol, Sequence

import numpy as np

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.request import Request  # one request type for every searcher
from fashionsearchnet.whole_numbers import whole_number

if TYPE_CHECKING:
    from fashionsearchnet.evaluation.figures import MethodFeatures

KS = (1, 5, 10, 20, 30, 50)
PROTOCOLS = ("query", "manipulation", "region", "item", "adde", "region_part", "region_primary")
REGION_PROTOCOLS = ("region", "region_part", "region_primary", "region_differ", "region_match")  # need region truth
EXTRA_PROTOCOLS = ("region_differ", "region_match")  # breakdowns of ``region``, run only when asked for


class Searcher(Protocol):
    def search(self, query_rows: np.ndarray, requests: Sequence[Request], gallery_rows: np.ndarray,
               k: int) -> np.ndarray:
        """(Q, k) dataset rows, best first."""


@dataclass
class Task:
    """One protocol's list of queries: row, request and the target labels a hit must have."""

    name: str
    query_rows: np.ndarray  # (Q,)
    requests: list[Request]
    targets: np.ndarray  # (Q, A) image-level target, -1 = not compared
    region_targets: np.ndarray  # (Q, C) over region_columns, -1 = not compared
    region_columns: tuple[str, ...]
    gallery_rows: np.ndarray
    item_targets: list[str | None] | None = None  # item protocol: the item id a hit must have
    exclude_items: list[str | None] | None = None  # region_part: the item id a hit must NOT have (None: any)


def _match(dataset: Dataset, rows: np.ndarray, targets: np.ndarray, region_targets: np.ndarray,
           region_columns: Sequence[str], item_targets: Sequence[str | None] | None = None,
           exclude_items: Sequence[str | None] | None = None) -> np.ndarray:
    """Boolean (Q, K): does result ``rows[q, j]`` satisfy query q's target (strict unknown rule); with
    ``exclude_items``, a result whose item id is query q's excluded one never does."""
    lab = dataset.labels[rows]  # (Q, K, A)
    t = targets[:, None, :]
    ok = np.where(t >= 0, lab == t, True).all(-1)
    for c, col in enumerate(region_columns):
        rl = dataset.region_labels[col][rows]
        tc = region_targets[:, None, c]
        ok &= np.where(tc >= 0, rl == tc, True)
    if item_targets is not None:
        ids = np.asarray([x if x is not None else "" for x in dataset.item_ids], dtype=object)
        want = np.asarray([x if x is not None else "\0" for x in item_targets], dtype=object)
        ok &= ids[rows] == want[:, None]
    if exclude_items is not None:
        ids = np.asarray([x if x is not None else "" for x in dataset.item_ids], dtype=object)
        avoid = np.asarray([x if x is not None else "\0" for x in exclude_items], dtype=object)
        ok &= ids[rows] != avoid[:, None]
    return ok


def _satisfiable(dataset: Dataset, gallery_rows: np.ndarray, targets: np.ndarray, region_targets: np.ndarray,
                 region_columns: Sequence[str], exclude_items: Sequence[str | None] | None = None) -> np.ndarray:
    """(Q,) whether any gallery row satisfies each target (with another item id than ``exclude_items``').

    A target that knows every image-level label can only be satisfied by gallery rows with exactly those labels:
    they are looked up in an index of the gallery by label vector (the region protocols ask ~100k such targets of
    a 20k gallery); the other targets are matched against the whole gallery, 256 at a time."""
    out = np.zeros(len(targets), bool)
    gallery_rows = np.asarray(gallery_rows, np.int64)
    labels = np.ascontiguousarray(dataset.labels[gallery_rows])
    index: dict[bytes, list[int]] = {}
    for j in range(len(gallery_rows)):
        index.setdefault(labels[j].tobytes(), []).append(j)
    ids = np.asarray([x if x is not None else "" for x in dataset.item_ids], dtype=object)
    full = (targets >= 0).all(1)
    for i in np.flatnonzero(full):
        cand = index.get(np.ascontiguousarray(targets[i], dtype=labels.dtype).tobytes())
        if not cand:
            continue
        rows = gallery_rows[cand]
        ok = np.ones(len(rows), bool)
        for c, col in enumerate(region_columns):
            if region_targets[i, c] >= 0:
                ok &= dataset.region_labels[col][rows] == region_targets[i, c]
        if exclude_items is not None and exclude_items[i] is not None:
            ok &= ids[rows] != exclude_items[i]
        out[i] = bool(ok.any())
    rest = np.flatnonzero(~full)
    for s in range(0, len(rest), 256):
        sl = rest[s:s + 256]
        rows = np.broadcast_to(gallery_rows[None, :], (len(sl), len(gallery_rows)))
        ex = None if exclude_items is None else [exclude_items[i] for i in sl]
        out[sl] = _match(dataset, rows, targets[sl], region_targets[sl], region_columns, exclude_items=ex).any(1)
    return out


def _sample_queries(dataset: Dataset, max_queries: int | None, seed: int) -> np.ndarray:
    q = dataset.indices("query")
    if max_queries is not None and len(q) > max_queries:
        q = np.sort(np.random.default_rng([seed, 11]).choice(q, max_queries, replace=False))
    return q


def _region_columns(dataset: Dataset) -> tuple[str, ...]:
    return tuple(sorted(dataset.region_labels))


def _empty_region_targets(n: int, cols: Sequence[str]) -> np.ndarray:
    return np.full((n, len(cols)), -1, np.int32)


def _manipulation_pairs(dataset: Dataset, queries: np.ndarray, gallery: np.ndarray):
    """Every (query, attribute, value) with a known query label and another value present in the gallery."""
    schema = dataset.schema
    present = [set(np.unique(dataset.labels[gallery, a])) - {-1} for a in range(len(schema.attributes))]
    qs, reqs, targets = [], [], []
    for q in queries:
        for a, attr in enumerate(schema.attributes):
            cur = dataset.labels[q, a]
            if cur < 0:
                continue
            for v in sorted(present[a]):
                if v == cur:
                    continue
                t = dataset.labels[q].copy()
                t[a] = v
                qs.append(q)
                reqs.append(Request(set=((attr.name, attr.values[v]),)))
                targets.append(t)
    return qs, reqs, targets


def _two_tone(dataset: Dataset, task: Task) -> np.ndarray:
    """(Q,) for a region task: is the target two-tone in the requested attribute (a known region value of that
    attribute differs from the primary region's)?"""
    schema = dataset.schema
    primary = schema.primary_region
    cols = list(task.region_columns)
    out = np.zeros(len(task.requests), bool)
    for i, req in enumerate(task.requests):
        (_, attr, _), = req.region
        ref = task.region_targets[i, cols.index(f"{primary}:{attr}")] if f"{primary}:{attr}" in cols else -1
        for c, col in enumerate(cols):
            if col.endswith(f":{attr}") and col != f"{primary}:{attr}":
                v = task.region_targets[i, c]
                out[i] |= bool(v >= 0 and ref >= 0 and v != ref)
    return out


def primary_values(dataset: Dataset, attr: str, rows: np.ndarray) -> np.ndarray:
    """The primary-region (torso) value of ``attr`` of ``rows``: its region truth column where there is one,
    else the image-level label (which describes the primary region); -1 = unknown."""
    col = f"{dataset.schema.primary_region}:{attr}"
    if col in dataset.region_labels:
        return dataset.region_labels[col][rows]
    return dataset.labels[rows, dataset.schema.attr_index(attr)]


def _region_subset(dataset: Dataset, task: Task, protocol: str) -> Task:
    """``region_part`` / ``region_primary`` from the (satisfiable) ``region`` task: see the module doc."""
    primary = dataset.schema.primary_region
    keep = np.zeros(len(task.requests), bool)
    for i, req in enumerate(task.requests):
        (region, attr, value), = req.region
        if protocol == "region_primary":
            keep[i] = region == primary
        elif region != primary:
            cur = int(primary_values(dataset, attr, task.query_rows[i:i + 1])[0])
            keep[i] = cur >= 0 and dataset.schema.attributes[dataset.schema.attr_index(attr)].values[cur] != value
    sub = Task(protocol, task.query_rows[keep], [r for r, k in zip(task.requests, keep) if k], task.targets[keep],
               task.region_targets[keep], task.region_columns, task.gallery_rows)
    if protocol == "region_primary":
        return sub
    sub.exclude_items = [dataset.item_ids[int(q)] for q in sub.query_rows]
    ok = _satisfiable(dataset, sub.gallery_rows, sub.targets, sub.region_targets, sub.region_columns, sub.exclude_items)
    return Task(protocol, sub.query_rows[ok], [r for r, k in zip(sub.requests, ok) if k], sub.targets[ok],
                sub.region_targets[ok], sub.region_columns, sub.gallery_rows,
                exclude_items=[x for x, k in zip(sub.exclude_items, ok) if k])


def own_item_only(dataset: Dataset, task: Task) -> np.ndarray:
    """(Q,) for each pair of ``task``: is its target satisfied by no gallery item with another item id than the
    query's (only the query's own colour variant answers it)?"""
    exclude = [dataset.item_ids[int(q)] for q in task.query_rows]
    return ~_satisfiable(dataset, task.gallery_rows, task.targets, task.region_targets, task.region_columns, exclude)


def region_subtask(dataset: Dataset, region_task: Task, protocol: str) -> Task:
    """One of the ``region`` task's subsets (``region_part``, ``region_primary``, ``region_differ``,
    ``region_match``) from that task (built once by :func:`evaluate` for all of them)."""
    if protocol in ("region_part", "region_primary"):
        return _region_subset(dataset, region_task, protocol)
    task = region_task
    keep = _two_tone(dataset, task) == (protocol == "region_differ")
    return Task(protocol, task.query_rows[keep], [r for r, k in zip(task.requests, keep) if k],
                task.targets[keep], task.region_targets[keep], task.region_columns, task.gallery_rows)


def build_task(dataset: Dataset, protocol: str, seed: int = 0, max_queries: int | None = None) -> Task:
    """The (query, request, target) list of one protocol, deterministic for a seed."""
    schema = dataset.schema
    if max_queries is not None and (whole_number(max_queries) is None or max_queries < 1):
        raise UsageError(f"--max-queries {max_queries!r}: give a whole number >= 1 (or leave it out for every query)")
    gallery = dataset.indices("gallery")
    queries = _sample_queries(dataset, max_queries, seed)
    if len(gallery) == 0 or len(queries) == 0:
        raise UsageError("evaluation needs rows with split 'gallery' and 'query' in attributes.csv; add a split column")
    cols = _region_columns(dataset)
    if protocol == "query":
        targets = dataset.labels[queries].copy()
        task = Task(protocol, queries, [Request()] * len(queries), targets,
                    _empty_region_targets(len(queries), cols), cols, gallery)
    elif protocol in ("manipulation", "adde"):
        g = np.union1d(gallery, queries) if protocol == "adde" else gallery
        qs, reqs, targets = _manipulation_pairs(dataset, queries, g)
        t = np.asarray(targets, np.int32).reshape(-1, len(schema.attributes))
        task = Task(protocol, np.asarray(qs, np.int64), reqs, t, _empty_region_targets(len(qs), cols), cols, g)
    elif protocol == "region":
        qs, reqs, targets, rtargets = [], [], [], []
        primary = schema.primary_region
        for q in queries:
            for region, attr in schema.region_pairs:
                col = f"{region}:{attr}"
                if col not in dataset.region_labels:
                    continue
                cur = dataset.region_labels[col][q]
                if cur < 0:
                    continue
                a = schema.attr_index(attr)
                for v in range(len(schema.attributes[a].values)):
                    if v == cur:
                        continue
                    t = dataset.labels[q].copy()
                    if region == primary:
                        t[a] = v
                    rt = np.asarray([dataset.region_labels[c][q] for c in cols], np.int32)
                    rt[cols.index(col)] = v
                    qs.append(q)
                    reqs.append(Request(region=((region, attr, schema.attributes[a].values[v]),)))
                    targets.append(t)
                    rtargets.append(rt)
        t = np.asarray(targets, np.int32).reshape(-1, len(schema.attributes))
        rt = np.asarray(rtargets, np.int32).reshape(-1, len(cols))
        task = Task(protocol, np.asarray(qs, np.int64), reqs, t, rt, cols, gallery)
    elif protocol == "item":
        by_item: dict[str, list[int]] = {}
        for r in gallery:
            if dataset.item_ids[r] is not None:
                by_item.setdefault(dataset.item_ids[r], []).append(int(r))
        qs, reqs, targets, items = [], [], [], []
        seen: set[tuple] = set()
        for q in queries:
            iid = dataset.item_ids[q]
            for r in by_item.get(iid, []) if iid is not None else []:
                ql, rl = dataset.labels[q], dataset.labels[r]
                diff = [(schema.attributes[a].name, schema.attributes[a].values[rl[a]])
                        for a in range(len(ql)) if ql[a] >= 0 and rl[a] >= 0 and ql[a] != rl[a]]
                key = (int(q), tuple(diff))
                if not diff or key in seen:
                    continue
                seen.add(key)
                qs.append(q)
                reqs.append(Request(set=tuple(diff)))
                targets.append(rl.copy())
                items.append(iid)
        t = np.asarray(targets, np.int32).reshape(-1, len(schema.attributes))
        task = Task(protocol, np.asarray(qs, np.int64), reqs, t, _empty_region_targets(len(qs), cols), cols,
                    gallery, item_targets=items)
        return task  # the variant itself is in the gallery, so every pair is satisfiable
    elif protocol in REGION_PROTOCOLS:
        return region_subtask(dataset, build_task(dataset, "region", seed=seed, max_queries=max_queries), protocol)
    else:
        raise UsageError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS + EXTRA_PROTOCOLS)}")
    keep = _satisfiable(dataset, task.gallery_rows, task.targets, task.region_targets, cols)
    return Task(task.name, task.query_rows[keep], [r for r, k in zip(task.requests, keep) if k],
                task.targets[keep], task.region_targets[keep], cols, task.gallery_rows)


def score(dataset: Dataset, task: Task, results: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """Top-K, precision@K (K up to the gallery size) and, for adde, NDCG@K in percent from a (Q, >=max(ks)) result
    matrix."""
    n = len(task.query_rows)
    out: dict[str, float] = {}
    if n == 0:
        out.update({f"top{k}": float("nan") for k in ks})
        out["n"] = 0
        return out
    kmax = max(ks)
    if results.shape != (n, kmax) and not (results.shape[0] == n and results.shape[1] >= min(kmax, len(task.gallery_rows))):
        raise UsageError(f"searcher returned shape {results.shape}, expected ({n}, {kmax})")
    hits = _match(dataset, results[:, :kmax], task.targets, task.region_targets, task.region_columns,
                  task.item_targets, task.exclude_items)
    for k in ks:
        out[f"top{k}"] = round(100.0 * float(hits[:, :k].any(1).mean()), 3)
        if k <= len(task.gallery_rows):  # beyond it evaluate() pads with repeats of the last result: no precision
            out[f"prec{k}"] = round(100.0 * float(hits[:, :k].mean()), 3)
    if task.name == "adde":
        rows = np.broadcast_to(task.gallery_rows[None, :], (1, len(task.gallery_rows)))
        n_rel = np.array([_match(dataset, rows, task.targets[i:i + 1], task.region_targets[i:i + 1],
                                 task.region_columns).sum() for i in range(n)])
        disc = 1.0 / np.log2(np.arange(2, kmax + 2))
        for k in ks:
            dcg = (hits[:, :k] * disc[:k]).sum(1)
            idcg = np.array([disc[: min(k, r)].sum() for r in n_rel])
            out[f"ndcg{k}"] = round(100.0 * float(np.mean(dcg / idcg)), 3)
    out["n"] = n
    return out


def missing(dataset: Dataset, protocol: str) -> str | None:
    """Why ``dataset`` cannot support ``protocol`` (a protocol or a figure), naming what is missing and what
    exists; None when it can."""
    from fashionsearchnet.evaluation.localisation import MASKS, has_masks

    if protocol in REGION_PROTOCOLS + ("region_specificity",) and not dataset.region_labels:
        pairs = ", ".join(f"{r}:{a}" for r, a in dataset.schema.region_pairs[:3]) or "sleeve:color"
        return (f"{dataset.root}/attributes.csv has no region truth columns (<region>:<attribute>, e.g. {pairs}); "
                f"its label columns are {', '.join(dataset.schema.names)}")
    if protocol == "localisation" and not has_masks(dataset):
        have = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(dataset.root).iterdir()) \
            if Path(dataset.root).is_dir() else []
        return (f"{dataset.root} has no {MASKS}/ folder of region masks (<image stem>.png, as 'fsn synth' writes "
                f"them); it has {', '.join(have) or 'nothing'}")
    if protocol == "item" and all(i is None for i in dataset.item_ids):
        return f"{dataset.root}/attributes.csv has no item_id column (or no item ids)"
    return None


def evaluate(dataset: Dataset, searchers: Mapping[str, Searcher], protocols: Sequence[str] | None = None,
             seed: int = 0, max_queries: int | None = None, ks: Sequence[int] = KS,
             features: Mapping[str, "MethodFeatures"] | None = None) -> dict[str, dict[str, dict]]:
    """Run every protocol for every method: ``{"<protocol>": {"<method>": {"top1": .., ..., "n": ..}}}``; the
    figures of evaluation/figures.py (``region_specificity``, ``localisation``) from ``features`` (one
    :class:`MethodFeatures` per trained method) in the same shape.

    ``protocols`` None: every protocol and figure the data (and ``features``) support, the others left out.
    Asked for explicitly, a region protocol or figure the data cannot support (no region truth, no masks) is a
    UsageError naming what is missing; ``item`` without item ids is left out as before.
    """
    from fashionsearchnet.evaluation.figures import FIGURES, figure

    explicit = protocols is not None
    protocols = tuple(protocols) if explicit else PROTOCOLS + FIGURES
    result: dict[str, dict[str, dict]] = {}
    region_task: Task | None = None
    for proto in protocols:
        if proto in COMPOSE_PROTOCOLS:  # no query image: its own block (evaluate_compose)
            result.update(evaluate_compose(dataset, searchers, seed, max_queries, ks,  # type: ignore[arg-type]
                                           compose_baseline_probs(searchers)))
            continue
        why = missing(dataset, proto)
        if why is not None:
            if explicit and proto != "item":
                raise UsageError(f"protocol {proto}: {why}; leave {proto} out of --protocols or evaluate on a "
                                 "catalogue that has it")
            continue
        if proto in FIGURES:
            if features is None:
                if explicit:
                    raise UsageError(f"protocol {proto}: needs the methods' features; evaluate a run or bundle "
                                     "with 'fsn eval'")
                continue
            result[proto] = figure(dataset, proto, features)
            continue
        if proto in REGION_PROTOCOLS and proto != "region":  # subsets of the region task: build it once
            if region_task is None:
                region_task = build_task(dataset, "region", seed=seed, max_queries=max_queries)
            task = region_subtask(dataset, region_task, proto)
        else:
            task = build_task(dataset, proto, seed=seed, max_queries=max_queries)
            region_task = task if proto == "region" else region_task
        result[proto] = {}
        for name, searcher in searchers.items():
            k = min(max(ks), len(task.gallery_rows))
            if len(task.query_rows):
                res = np.asarray(searcher.search(task.query_rows, task.requests, task.gallery_rows, k), np.int64)
            else:
                res = np.zeros((0, k), np.int64)
            if k < max(ks):  # tiny galleries: pad with the last result so Top-K stays defined
                res = np.concatenate([res, np.repeat(res[:, -1:], max(ks) - k, 1)], 1) if len(res) else \
                    np.zeros((0, max(ks)), np.int64)
            result[proto][name] = score(dataset, task, res, ks)
    return result


def evaluate_grouped(dataset: Dataset, searchers: Mapping[str, Searcher], protocol: str,
                     group: Callable[[Task, int], str], seed: int = 0, max_queries: int | None = None,
                     ks: Sequence[int] = KS) -> dict[str, dict[str, dict]]:
    """One protocol's Top-K per group of its (query, request) pairs: ``{group: {method: {...}}}``, where
    ``group(task, i)`` names pair i's group (e.g. the attribute a manipulation changes). Every method searches
    once; the groups partition the pairs of :func:`build_task`."""
    task = build_task(dataset, protocol, seed=seed, max_queries=max_queries)
    names = np.array([group(task, i) for i in range(len(task.query_rows))], dtype=object)
    k = min(max(ks), len(task.gallery_rows))
    results = {m: np.asarray(s.search(task.query_rows, task.requests, task.gallery_rows, k), np.int64)
               for m, s in searchers.items()} if len(task.query_rows) else {}
    out: dict[str, dict[str, dict]] = {}
    for g in sorted(set(names)):
        keep = names == g
        sub = Task(task.name, task.query_rows[keep], [r for r, kk in zip(task.requests, keep) if kk],
                   task.targets[keep], task.region_targets[keep], task.region_columns, task.gallery_rows,
                   None if task.item_targets is None else [t for t, kk in zip(task.item_targets, keep) if kk],
                   None if task.exclude_items is None else [t for t, kk in zip(task.exclude_items, keep) if kk])
        out[str(g)] = {m: score(dataset, sub, r[keep], [x for x in ks if x <= k]) for m, r in results.items()}
    return out


def requested_attribute(task: Task, i: int) -> str:
    """Group key for :func:`evaluate_grouped`: the attribute(s) pair i asks to change (``region:attr`` for
    region requests)."""
    req = task.requests[i]
    return "+".join([a for a, _ in req.set] + [f"{r}:{a}" for r, a, _ in req.region]) or "none"


def markdown_table(result: dict[str, dict[str, dict]], ks: Sequence[int] = (1, 10, 30, 50), metric: str = "top") -> str:
    """A results table: one row per (protocol, method); ``metric`` is ``top`` (Top-K) or ``prec`` (precision@K)."""
    head = "| protocol | method | " + " | ".join(f"{metric}{k}" for k in ks) + " | n |"
    lines = [head, "|" + "---|" * (len(ks) + 3)]
    for proto, methods in result.items():
        for m, r in methods.items():
            if not any(key.startswith(metric) and key[len(metric):].isdigit() for key in r):
                continue  # a figure (region_specificity, localisation): see evaluation/figures.figures_table
            vals = " | ".join(f"{r.get(f'{metric}{k}', float('nan')):.1f}" for k in ks)
            lines.append(f"| {proto} | {m} | {vals} | {r.get('n', 0)} |")
    return "\n".join(lines)


# ---- compose (issue 24): queries described by attribute values, no image --------------------------------------
COMPOSE_PROTOCOLS = ("compose",)
COMPOSE_SIZES = (1, 2, 3)
COMPOSE_PER_SIZE = 200  # distinct combinations drawn per size (fewer when the gallery has fewer)
CONFIDENCE_GROUPS = ("low", "mid", "high")  # tertiles of the classifier's confidence in the described values


class ComposedSearcher(Protocol):
    def compose(self, requests: Sequence[Request], gallery_rows: np.ndarray, k: int) -> np.ndarray:
        """(Q, k) dataset rows, best first, for queries described by ``requests`` alone."""


def compose_combinations(dataset: Dataset, gallery_rows: np.ndarray, seed: int = 0,
                         per_size: int = COMPOSE_PER_SIZE, sizes: Sequence[int] = COMPOSE_SIZES) -> list[tuple]:
    """Distinct combinations ((attribute index, value index), ...) of 1-3 values that a gallery item has (its
    labels): a gallery item and that many of its known attributes are drawn (seeded), so common combinations
    are likelier to be drawn, each counted once. Deterministic for a seed."""
    rng = np.random.default_rng([seed, 24])
    labels = dataset.labels[np.asarray(gallery_rows)]
    out: list[tuple] = []
    for n in sizes:
        seen: set[tuple] = set()
        for _ in range(per_size * 30):
            if len(seen) >= per_size:
                break
            r = int(rng.integers(len(labels)))
            known = np.flatnonzero(labels[r] >= 0)
            if len(known) < n:
                continue
            combo = tuple((int(a), int(labels[r, a])) for a in sorted(rng.choice(known, n, replace=False)))
            if combo not in seen:
                seen.add(combo)
                out.append(combo)
    return out


def build_compose_task(dataset: Dataset, seed: int = 0, per_size: int | None = None) -> Task:
    """The ``compose`` protocol's pairs: a request per combination (no query image: ``query_rows`` -1), hit = a
    gallery item whose labels have every described value."""
    schema = dataset.schema
    gallery = dataset.indices("gallery")
    if len(gallery) == 0:
        raise UsageError("the compose protocol needs rows with split 'gallery' in attributes.csv; add a split column")
    if per_size is not None and (whole_number(per_size) is None or per_size < 1):
        raise UsageError(f"--max-queries {per_size!r}: give a whole number >= 1 (or leave it out)")
    combos = compose_combinations(dataset, gallery, seed, per_size or COMPOSE_PER_SIZE)
    targets = np.full((len(combos), len(schema.attributes)), -1, np.int32)
    reqs = []
    for i, combo in enumerate(combos):
        for a, v in combo:
            targets[i, a] = v
        reqs.append(Request(set=tuple((schema.attributes[a].name, schema.attributes[a].values[v]) for a, v in combo)))
    cols = _region_columns(dataset)
    return Task("compose", np.full(len(combos), -1, np.int64), reqs, targets, _empty_region_targets(len(combos), cols),
                cols, gallery)


def compose_confidence(dataset: Dataset, task: Task, probs: np.ndarray) -> np.ndarray:
    """(Q,) the classifier's confidence in each described combination: over the gallery items that have it (the
    hits), the mean of the product of the predicted probabilities of the described values."""
    offsets = dataset.schema.class_offsets
    g = task.gallery_rows
    hit = _match(dataset, np.broadcast_to(g[None, :], (len(task.targets), len(g))), task.targets,
                 task.region_targets, task.region_columns)
    out = np.zeros(len(task.targets), np.float64)
    for i, t in enumerate(task.targets):
        joint = np.ones(len(g), np.float64)
        for a in np.flatnonzero(t >= 0):
            joint *= probs[g, offsets[a] + t[a]]
        out[i] = float(joint[hit[i]].mean()) if hit[i].any() else 0.0
    return out


def evaluate_compose(dataset: Dataset, searchers: Mapping[str, ComposedSearcher], seed: int = 0,
                     max_queries: int | None = None, ks: Sequence[int] = KS, baseline_probs: np.ndarray | None = None,
                     baseline: str = "label_filter") -> dict[str, dict[str, dict]]:
    """The ``compose`` protocol: ``{"compose": {method: {top.., prec.., n}}, "compose_low": ..., "compose_mid": ...,
    "compose_high": ...}``. ``baseline_probs`` (every dataset row's class probabilities) add the
    filter-on-predicted-labels baseline (:class:`evaluation.label_ranker.PredictedLabelFilter`) as ``baseline``
    and split the pairs into tertiles of that classifier's confidence in the described values (the groups)."""
    from fashionsearchnet.evaluation.label_ranker import PredictedLabelFilter

    task = build_compose_task(dataset, seed, max_queries)
    searchers = dict(searchers)
    if baseline_probs is not None:
        searchers[baseline] = PredictedLabelFilter(dataset, baseline_probs, seed)
    k = min(max(ks), len(task.gallery_rows))
    results = {}
    for name, s in searchers.items():
        res = np.asarray(s.compose(task.requests, task.gallery_rows, k), np.int64).reshape(len(task.requests), k)
        if k < max(ks):  # tiny galleries: pad with the last result so Top-K stays defined
            res = np.concatenate([res, np.repeat(res[:, -1:], max(ks) - k, 1)], 1)
        results[name] = res
    out = {"compose": {m: score(dataset, task, r, ks) for m, r in results.items()}}
    if baseline_probs is None or len(task.requests) == 0:
        return out
    conf = compose_confidence(dataset, task, np.asarray(baseline_probs))
    edges = np.quantile(conf, [1 / 3, 2 / 3])
    group = np.digitize(conf, edges)  # 0 low, 1 mid, 2 high
    for gi, gname in enumerate(CONFIDENCE_GROUPS):
        keep = group == gi
        sub = Task(task.name, task.query_rows[keep], [r for r, kk in zip(task.requests, keep) if kk],
                   task.targets[keep], task.region_targets[keep], task.region_columns, task.gallery_rows)
        out[f"compose_{gname}"] = {m: {**score(dataset, sub, r[keep], ks),
                                       "confidence": [round(float(conf[keep].min(initial=1.0)), 4),
                                                      round(float(conf[keep].max(initial=0.0)), 4)]}
                                   for m, r in results.items()}
    return out


def compose_baseline_probs(searchers: Mapping[str, object]) -> np.ndarray | None:
    """The predicted-label filter reads the classifier a kiosk filters with: the ``fsn`` searcher's features
    (its gallery's predicted attributes), else the first searcher that has features."""
    order = ["fsn"] + [m for m in searchers if m != "fsn"]
    for m in order:
        feats = getattr(searchers.get(m), "features", None)
        if feats is not None:
            return feats.probs
    return None
