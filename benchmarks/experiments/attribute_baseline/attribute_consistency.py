"""Why the attribute baseline saturates: manipulation Top-K grouped by whether the query's predicted labels are
right, and whether some target's predicted labels equal the query's predicted labels after the substitution.

    .venv/bin/python -m benchmarks.experiments.attribute_baseline.attribute_consistency --run /tmp/fsn-det/run-synth-edge \
        --data /tmp/fsn-det/heldout-4500-detailed --out benchmarks/experiments/attribute_baseline/results/consistency_detailed

The attribute method searches on class probabilities with the requested block set to a one-hot, so it finds a
target whose *predicted* labels equal the query's predicted labels after the change, right or wrong. Groups:
``right`` / ``wrong`` (every known label of the query predicted right or not) x ``consistent`` / ``inconsistent``
(some gallery target, a row with the target labels, is predicted as the substituted query prediction or not).
Same pairs as ``fsn eval``'s ``manipulation`` protocol (seed 0). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import Task, _match, evaluate_grouped
from fashionsearchnet.training.evaluate import build_searchers

from benchmarks._report import command, machine, write_report


def grouper(ds, pred: np.ndarray):
    """group(task, i) -> 'right|wrong, consistent|inconsistent' for :func:`evaluate_grouped`."""
    s = ds.schema

    def group(task: Task, i: int) -> str:
        q = int(task.query_rows[i])
        known = ds.labels[q] >= 0
        right = bool((pred[q][known] == ds.labels[q][known]).all())
        want = pred[q].copy()
        for attr, value in task.requests[i].set:
            want[s.attr_index(attr)] = s.value_index(attr, value)
        hit = _match(ds, task.gallery_rows[None], task.targets[i:i + 1], task.region_targets[i:i + 1],
                     task.region_columns)[0]  # the gallery rows that satisfy pair i (the protocol's rule)
        consistent = bool((pred[task.gallery_rows[hit]] == want).all(1).any())
        return f"{'right' if right else 'wrong'}, {'consistent' if consistent else 'inconsistent'}"
    return group


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder with attribute (and fsn) methods")
    ap.add_argument("--data", required=True, help="dataset with gallery and query rows")
    ap.add_argument("--methods", default="attribute,fsn", help="methods to compare (attribute is always included)")
    ap.add_argument("--out", default="benchmarks/experiments/attribute_baseline/results/consistency")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    methods = ["attribute", *(m for m in args.methods.split(",") if m != "attribute")]
    searchers = build_searchers(args.run, ds, methods=methods)
    attribute = searchers["attribute"]  # its class probabilities give the predicted labels (no second extraction)
    pred = attribute.params.schema.predicted(attribute.features.probs)[0]
    res = evaluate_grouped(ds, searchers, "manipulation", grouper(ds, pred), ks=(1, 10, 30))
    cmd, mach = command(), machine()
    methods = list(next(iter(res.values())).keys())
    total = sum(next(iter(g.values()))["n"] for g in res.values())
    md = ["# Manipulation Top-30 (Top-1) by the attribute classifier's correctness and consistency", "",
          f"Command: `{cmd}`", "", f"Machine: {mach}", "",
          "| query labels, a target predicted as the substituted query | pairs | share | "
          + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for g, r in res.items():
        n = next(iter(r.values()))["n"]
        md.append(f"| {g} | {n} | {100.0 * n / total:.1f}% | "
                  + " | ".join(f"{r[m]['top30']:.1f} ({r[m]['top1']:.1f})" for m in methods) + " |")
    write_report(args.out, {"command": cmd, "machine": mach, "groups": res}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
