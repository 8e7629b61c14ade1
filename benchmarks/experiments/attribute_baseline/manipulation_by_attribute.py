"""Manipulation Top-K per changed attribute (e.g. colour vs article type on the real catalogue), every method.

    .venv/bin/python -m benchmarks.experiments.attribute_baseline.manipulation_by_attribute --run /tmp/fsn-tm/run-real-edge \
        --data /tmp/fsn-tm/fashion-product --out benchmarks/experiments/attribute_baseline/results/by_changed_attribute_real

Same pairs as ``fsn eval``'s ``manipulation`` protocol (and ``item``), grouped by the attribute a request
changes (evaluation.protocol.evaluate_grouped). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import sys

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import evaluate_grouped, requested_attribute
from fashionsearchnet.training.evaluate import build_searchers

from benchmarks._report import command, machine, write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocols", default="manipulation", help="comma-separated, e.g. manipulation,item")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/experiments/attribute_baseline/results/by_changed_attribute")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    searchers = build_searchers(args.run, ds)
    res = {p: evaluate_grouped(ds, searchers, p, requested_attribute, seed=args.seed)
           for p in args.protocols.split(",")}
    cmd, mach = command(), machine()
    methods = list(searchers)
    md = [f"# Top-30 (Top-1) per changed attribute: run `{args.run}`, data `{args.data}`", "",
          f"Command: `{cmd}`", "", f"Machine: {mach}", ""]
    for p, groups in res.items():
        md += [f"## {p}", "", "| changed | n | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
        for g, r in groups.items():
            n = next(iter(r.values()))["n"]
            md.append(f"| {g} | {n} | " + " | ".join(f"{r[m]['top30']:.1f} ({r[m]['top1']:.1f})" for m in methods)
                      + " |")
        md.append("")
    write_report(args.out, {"command": cmd, "machine": mach, "results": res}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
