"""Headroom a catalogue leaves at Top-K: the protocols run with a simulated attribute-based method (no model).

    .venv/bin/python -m benchmarks.experiments.label_ceiling.label_ceiling --data /tmp/fsn-hard/heldout-4500-hard \
        --data /tmp/fsn-hard20k/heldout-22021-0_0.9092_0.0908-hard --errors 0,0.02,0.05,0.1,0.2 \
        --out benchmarks/experiments/label_ceiling/results/hard

Each ``--data`` catalogue is evaluated on ``--protocols`` (image-level ones) with
``evaluation.label_ranker.NoisyLabelRanker`` at every ``--errors`` rate: labels predicted wrong with that chance,
gallery ranked by agreeing attributes. Reads only attributes.csv (no images, no torch); seconds per catalogue.
Writes OUT.json ({catalogue: {protocol: {"labels_e<rate>": {...}}}}) and OUT.md.
"""
from __future__ import annotations

import argparse
import sys

from benchmarks._report import command, machine, write_report

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.label_ranker import NoisyLabelRanker
from fashionsearchnet.evaluation.protocol import evaluate


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--errors {text!r}: give comma-separated fractions, e.g. 0,0.05,0.1") from None
    if not rates or any(not 0 <= r <= 1 for r in rates):
        raise SystemExit(f"--errors {text!r}: every rate must be a fraction between 0 and 1")
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", required=True, help="dataset folder with gallery/query splits (repeat)")
    ap.add_argument("--errors", default="0,0.02,0.05,0.1,0.2", help="simulated per-label error rates")
    ap.add_argument("--protocols", default="manipulation,item,adde", help="image-level protocols")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated errors and of the pair sampling")
    ap.add_argument("--out", default="benchmarks/experiments/label_ceiling/results/hard4k_hard20k_real")
    args = ap.parse_args(argv)
    rates = _rates(args.errors)
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    if any(p.startswith("region") for p in protocols):
        raise SystemExit("--protocols: the label ranker simulates image-level requests; leave out region protocols")
    result: dict[str, dict] = {}
    md = ["# Headroom at Top-K: a simulated attribute-based method with per-label error e", "",
          f"Command: `{command()}`", "", f"Machine: {machine()}", "",
          "Each label of every gallery and query image is predicted wrong with chance e (another value, seeded); "
          "the gallery is ranked by the number of attributes that agree with the request's target, ties in a "
          "fixed random order. e = 0 finds every target first; the Top-K left at a classifier's error rate is "
          "what that catalogue can still tell apart.", ""]
    for folder in args.data:
        ds = load_dataset(folder)
        searchers = {f"labels_e{r:g}": NoisyLabelRanker(ds, r, seed=args.seed) for r in rates}
        res = evaluate(ds, searchers, protocols=protocols, seed=args.seed)
        sizes = {sp: int(len(ds.indices(sp))) for sp in ("gallery", "query")}
        result[str(folder)] = {"sizes": sizes, "attributes": len(ds.schema.attributes), "results": res}
        md += [f"## `{folder}`: {sizes['gallery']} gallery, {sizes['query']} queries, "
               f"{len(ds.schema.attributes)} attributes", "",
               "| protocol | e | top1 | top5 | top10 | top30 | top50 | n |", "|---|---|---|---|---|---|---|---|"]
        for p, methods in res.items():
            for name, r in methods.items():
                md.append(f"| {p} | {name.removeprefix('labels_e')} | " +
                          " | ".join(f"{r[f'top{k}']:.1f}" for k in (1, 5, 10, 30, 50)) + f" | {r['n']} |")
        md.append("")
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
