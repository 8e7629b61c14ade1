"""Composed queries (issue 24): the ``compose`` protocol for every trained method of a run, beside the
filter-on-predicted-labels baseline, with the unset-attribute mode (``omit`` / ``neutral``, search/compose.py)
chosen on a validation split carved from the TRAINING rows; then the test figures of both modes::

    nice -n 19 .venv/bin/python -m benchmarks.experiments.compose.compose --run /work/runs/region/edge-s0 \\
        --train-data /work/runs/region/train-basic-8k --data /tmp/compose-synth/heldout-4500 \\
        --out benchmarks/experiments/compose/results/synth_basic_heldout4k

The validation split is ``region_weight.validation_split`` (a seeded sample of training rows relabelled
gallery/query; the test catalogue is not looked at). The choice: the mode with the higher validation
precision@10 of ``fsn`` (else ``fsn_region`` / ``no_aam``, whichever was trained). Writes OUT.json and OUT.md (command, machine). Features: the PyTorch reference path.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

from benchmarks._report import command, machine, write_report
from benchmarks.experiments.region_weight.region_weight import validation_split

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import CONFIDENCE_GROUPS, compose_baseline_probs, evaluate_compose
from fashionsearchnet.search.params import COMPOSE_UNSET_MODES

KS = (1, 5, 10, 20, 30, 50)
GLOBAL = ("fsn", "fsn_region", "no_aam")  # the methods the unset mode changes


def run_compose(ds, searchers: dict, per_size: int, seed: int) -> dict[str, dict]:
    """{mode: evaluate_compose result}: the baseline reads the fsn features' predicted labels."""
    from fashionsearchnet.search.exact import ExactSearcher

    probs = compose_baseline_probs(searchers)
    out = {}
    for mode in COMPOSE_UNSET_MODES:
        s = {n: ExactSearcher(dataclasses.replace(x.params, compose_unset=mode), x.features, x.method)
             for n, x in searchers.items()}
        if "fsn" in searchers:  # the label filter's classifier, ranked by probability instead of filtered
            s["fsn_probs"] = ExactSearcher(searchers["fsn"].params, searchers["fsn"].features, "attribute")
        out[mode] = evaluate_compose(ds, s, seed=seed, max_queries=per_size, ks=KS, baseline_probs=probs)
    return out


def searchers_of(run: Path, ds, methods, device: str) -> dict:
    from fashionsearchnet.training.evaluate import build_searchers

    return build_searchers(run, ds, methods, device)


def test_gallery_sample(ds, rows: int, seed: int):
    """``ds`` with a seeded sample of ``rows`` gallery rows kept as the gallery; every other row -> 'unused'."""
    import numpy as np

    g = ds.indices("gallery")
    keep = np.sort(np.random.default_rng([seed, 43]).choice(g, min(rows, len(g)), replace=False))
    splits = np.full(len(ds), "unused", dtype=object)
    splits[keep] = "gallery"
    return dataclasses.replace(ds, splits=splits.astype(str))


def table(res: dict, protos: tuple[str, ...], cols=("top1", "top10", "prec1", "prec5", "prec10")) -> list[str]:
    lines = ["| pairs | method | " + " | ".join(cols) + " | n |", "|---|---|" + "---|" * (len(cols) + 1)]
    for p in protos:
        for m, r in res.get(p, {}).items():
            conf = f" (conf. {r['confidence'][0]:.2f}-{r['confidence'][1]:.2f})" if "confidence" in r else ""
            lines.append(f"| {p}{conf} | {m} | " + " | ".join(f"{r.get(c, float('nan')):.1f}" for c in cols)
                         + f" | {r['n']} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder (fsn train)")
    ap.add_argument("--data", required=True, help="test catalogue (its gallery split is searched)")
    ap.add_argument("--train-data", default=None, help="the run's training catalogue (validation split); "
                                                      "default --data (its training rows)")
    ap.add_argument("--methods", default=None, help="comma list (default every trained method)")
    ap.add_argument("--per-size", type=int, default=200, help="combinations per size 1, 2, 3 (default 200)")
    ap.add_argument("--val-rows", type=int, default=2000, help="training rows in the validation split")
    ap.add_argument("--test-rows", type=int, default=None,
                    help="search a seeded sample of this many test gallery rows (default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--label", default="", help="catalogue name for the report title")
    ap.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("compose")
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    run = Path(args.run)
    t0 = time.monotonic()
    val_ds = validation_split(load_dataset(args.train_data or args.data), 0.0, args.val_rows, args.seed)
    val = run_compose(val_ds, searchers_of(run, val_ds, methods, args.device), args.per_size, args.seed)
    judge = next((m for m in GLOBAL if m in val["omit"]["compose"]), None)  # fsn when trained
    chosen = max(COMPOSE_UNSET_MODES, key=lambda m: (val[m]["compose"][judge]["prec10"] if judge else 0.0,
                                                     m == "omit"))
    log.info("validation (%s): %s", judge, {m: val[m]["compose"][judge]["prec10"] for m in val} if judge else None)
    test_ds = load_dataset(args.data)
    if args.test_rows:  # a sample of the test gallery; its queries are not needed (no image in this protocol)
        test_ds = test_gallery_sample(test_ds, args.test_rows, args.seed)
    test = run_compose(test_ds, searchers_of(run, test_ds, methods, args.device), args.per_size, args.seed)
    took = time.monotonic() - t0
    cmd, mach = command(), machine()
    result = {"command": cmd, "machine": mach, "run": str(run), "data": str(args.data),
              "train_data": str(args.train_data or args.data), "validation_rows": int(len(val_ds.indices("gallery"))),
              "test_gallery": int(len(test_ds.indices("gallery"))), "per_size": args.per_size, "seed": args.seed,
              "chosen_unset": chosen, "validation": val, "test": test, "seconds": round(took, 1)}
    groups = tuple(f"compose_{g}" for g in CONFIDENCE_GROUPS)
    other = [m for m in COMPOSE_UNSET_MODES if m != chosen][0]
    v = {m: {n: r["prec10"] for n, r in val[m]["compose"].items() if n in GLOBAL} for m in val}
    md = [f"# Composed queries (no image){' — ' + args.label if args.label else ''}", "",
          f"Command: `{cmd}`", "", f"Machine: {mach}; {took:.0f} s", "",
          f"Run `{run}`; test catalogue `{args.data}` (gallery {result['test_gallery']} items); "
          f"{args.per_size} combinations of each size 1-3 drawn from gallery items' labels (seed {args.seed}). "
          "Hit = an item with every described value. `label_filter`: items whose predicted labels (the fsn "
          "model's classifier, what `--filter` uses) match every value first, in a fixed random order, then "
          "items matching fewer. `fsn_probs`: the same classifier ranking by the joint probability of the "
          "described values (the attribute baseline's scoring on the fsn model's heads). Confidence groups: tertiles of that classifier's mean joint probability of the "
          "described values over the items that have them.", "",
          f"Unset attributes: **{chosen}**, chosen on a validation split of {result['validation_rows']} training "
          f"rows of `{result['train_data']}` by {judge} precision@10 (validation prec10 per mode: {v}). `label_filter` / `fsn_probs` read "
          f"the {'fsn' if 'fsn' in test[chosen]['compose'] else 'first method'}'s classifier.", "",
          f"## Test, unset = {chosen}", "", *table(test[chosen], ("compose",) + groups), "",
          f"## Test, unset = {other} (not chosen)", "", *table(test[other], ("compose",) + groups)]
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
