"""Held-out accuracy of the attribute classifier (the ``attribute`` method = stage 1) per attribute, and the share
of images with every attribute right: how close a run's classifier is to saturating a catalogue.

    .venv/bin/python -m benchmarks.experiments.attribute_baseline.attribute_accuracy --data /tmp/fsn-tm3/heldout-4500 \
        --run /tmp/fsn-tm2/run-synth-edge --run /tmp/fsn-tm3/run-synth-edge --out benchmarks/experiments/attribute_baseline/results/accuracy_basic
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.training.checkpoint import Checkpoint
from fashionsearchnet.training.extract import extract

from benchmarks._report import command, machine, write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled images (every row is used)")
    ap.add_argument("--run", action="append", required=True, help="run folder with an attribute method (repeat)")
    ap.add_argument("--out", default="benchmarks/experiments/attribute_baseline/results/accuracy_basic")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    rows = np.arange(len(ds))
    res = {}
    for run in args.run:
        ck = Checkpoint.load(Path(run) / "attribute")
        probs = extract(ck.build_model(), ds, rows)["probs"]
        s = ck.schema
        known = ds.labels[rows] >= 0
        ok = s.predicted(probs)[0] == ds.labels[rows]
        res[run] = {"train_rows": int(ck.train_rows),
                    **{n: 100.0 * float(ok[known[:, a], a].mean()) for a, n in enumerate(s.names)},
                    "all": 100.0 * float((ok | ~known).all(1).mean())}
    cmd, mach = command(), machine()
    names = [k for k in next(iter(res.values())) if k != "train_rows"]
    md = [f"# Attribute classifier accuracy on `{args.data}` ({len(rows)} images), percent", "", f"Command: `{cmd}`",
          "", f"Machine: {mach}", "", "| run | train rows | " + " | ".join(names) + " |",
          "|---|---|" + "---|" * len(names)]
    md += [f"| `{r}` | {v['train_rows']} | " + " | ".join(f"{v[n]:.1f}" for n in names) + " |" for r, v in res.items()]
    write_report(args.out, {"command": cmd, "machine": mach, "data": args.data, "results": res}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
