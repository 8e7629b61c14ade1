"""Choose fsn_region's down-weight (section 4.4) on a validation split carved from the TRAINING rows.

The paper weighs the representations that a region request does not touch down but gives no value. This
script searches a grid of weights with the ``region`` protocol (and its two-tone half, ``region_differ``) on
pseudo gallery/query splits drawn from the run's training rows only (seeded; the test gallery and queries are
never looked at), picks the weight with the best validation Top-30 on ``region``, then reports the test
figures of the chosen weight and of the default 0.3 once each::

    .venv/bin/python -m benchmarks.experiments.region_weight.region_weight --run /tmp/fsn-tm2/run-synth-edge \
        --data /tmp/fsn-tm2/synth-10000-0-128 --out benchmarks/experiments/region_weight/results/basic_24k

Writes OUT.json and OUT.md. Features come from the PyTorch reference path (training/extract.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import _two_tone, evaluate, evaluate_grouped
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.training.evaluate import method_features

from benchmarks._report import command, machine, write_report

GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
PROTOS = ("region", "region_differ", "region_match")


def validation_split(ds, query_fraction: float, max_rows: int, seed: int):
    """The dataset with only (a sample of) its training rows, relabelled gallery/query; other rows -> 'unused'."""
    rng = np.random.default_rng([seed, 41])
    train = ds.indices("train")
    if len(train) > max_rows:
        train = np.sort(rng.choice(train, max_rows, replace=False))
    splits = np.full(len(ds), "unused", dtype=object)
    is_q = rng.random(len(train)) < query_fraction
    splits[train[is_q]] = "query"
    splits[train[~is_q]] = "gallery"
    return dataclasses.replace(ds, splits=splits.astype(str))


def searchers_for(run: Path, ds, weights, device: str):
    rows = np.union1d(ds.indices("gallery"), ds.indices("query"))
    table, model, meta = method_features(run, "fsn", ds, rows, device)
    base = dict(schema=meta["schema"], prototypes=meta["prototypes"], lam=model.lam.detach().cpu().numpy(),
                W=model.W.detach().cpu().numpy())
    out = {"fsn": ExactSearcher(SearchParams(**base, region_weight=meta["region_weight"]), table, method="fsn")}
    for w in weights:
        out[f"fsn_region@{w:g}"] = ExactSearcher(SearchParams(**base, region_weight=float(w)), table,
                                                 method="fsn_region")
    return out


def by_requested_region(ds, searchers, seed: int) -> dict[str, dict[str, dict]]:
    """Top-K of the ``region`` protocol split by the region asked for and by two-tone / one-colour target:
    {"<region>/<differ|match>": {method: {...}}}."""
    cache: dict[int, np.ndarray] = {}

    def key(task, i):
        if id(task) not in cache:
            cache[id(task)] = _two_tone(ds, task)
        return f"{task.requests[i].region[0][0]}/{'differ' if cache[id(task)][i] else 'match'}"

    return evaluate_grouped(ds, searchers, "region", key, seed=seed, ks=(1, 10, 30))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True, help="the dataset the run was trained on (its train rows are used)")
    ap.add_argument("--test-data", default=None, help="dataset for the test figures (default --data)")
    ap.add_argument("--val-rows", type=int, default=4000, help="training rows in the validation split")
    ap.add_argument("--val-query-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/experiments/region_weight/results/basic_24k")
    args = ap.parse_args(argv)
    run = Path(args.run)
    ds = load_dataset(args.data)
    val = validation_split(ds, args.val_query_fraction, args.val_rows, args.seed)
    vres = evaluate(val, searchers_for(run, val, GRID, args.device), protocols=PROTOS, seed=args.seed)
    score = {w: vres["region"][f"fsn_region@{w:g}"]["top30"] for w in GRID}
    best = max(GRID, key=lambda w: (score[w], -abs(w - 0.3)))
    test_ds = load_dataset(args.test_data) if args.test_data else ds
    tres = evaluate(test_ds, searchers_for(run, test_ds, sorted({best, 0.3}), args.device),
                    protocols=PROTOS, seed=args.seed)
    breakdown = by_requested_region(test_ds, searchers_for(run, test_ds, [best], args.device), args.seed)
    cmd = command()
    out = {"command": cmd, "machine": machine(),
           "grid": GRID, "validation": vres, "validation_rows": {s: int(len(val.indices(s))) for s in
                                                                  ("gallery", "query")},
           "chosen_weight": best, "test": tres, "test_by_region": breakdown}
    lines = ["# fsn_region down-weight chosen on a validation split of the training rows", "",
             f"Command: `{cmd}`", "", f"Machine: {out['machine']}", "",
             f"Validation: {out['validation_rows']} (training rows only).", "",
             "| weight | val region top1 | val region top30 | val region_differ top30 | val region_match top30 |",
             "|---|---|---|---|---|"]
    for w in GRID:
        r = {p: vres[p][f"fsn_region@{w:g}"] for p in PROTOS}
        lines.append(f"| {w:g} | {r['region']['top1']:.1f} | {r['region']['top30']:.1f} | "
                     f"{r['region_differ']['top30']:.1f} | {r['region_match']['top30']:.1f} |")
    lines.append(f"| fsn (no region awareness) | {vres['region']['fsn']['top1']:.1f} | "
                 f"{vres['region']['fsn']['top30']:.1f} | {vres['region_differ']['fsn']['top30']:.1f} | "
                 f"{vres['region_match']['fsn']['top30']:.1f} |")
    lines += ["", f"Chosen weight: **{best:g}** (best validation region Top-30; ties -> closest to 0.3).", "",
              "Test (the run's gallery/query splits), chosen and default weight:", "",
              "| method | region top1 | region top30 | region_differ top30 | region_match top30 | n (region/differ/match) |",
              "|---|---|---|---|---|---|"]
    for name in tres["region"]:
        r = {p: tres[p][name] for p in PROTOS}
        lines.append(f"| {name} | {r['region']['top1']:.1f} | {r['region']['top30']:.1f} | "
                     f"{r['region_differ']['top30']:.1f} | {r['region_match']['top30']:.1f} | "
                     f"{r['region']['n']}/{r['region_differ']['n']}/{r['region_match']['n']} |")
    names = list(next(iter(breakdown.values()))) if breakdown else []
    lines += ["", f"Test `region` pairs by the region asked for and the kind of target (chosen weight {best:g}), "
              "Top-30 (n):", "", "| requested | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, r in breakdown.items():
        lines.append(f"| {key} | " + " | ".join(f"{r[m]['top30']:.1f} ({r[m]['n']})" for m in names) + " |")
    write_report(args.out, out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
