"""Evaluate a trained run on an independently generated synthetic catalogue (never seen in training).

    .venv/bin/python -m benchmarks.experiments.methods.heldout_eval --run /tmp/fsn-tm/run-synth-edge --out benchmarks/experiments/methods/results/basic_24k_heldout4k

Generates ``--count`` images with ``--seed`` (a seed the run was not trained on) split only into gallery and query
(default 4,500: ~4,000 gallery, ~500 queries, the sizes issue 3 suggests; the paper's Shopping100k search set is
``--count 22021 --splits 0,0.9092,0.0908``: ~20,000 gallery, ~2,000 queries), runs ``fsn eval RUN DATA --json`` and
writes OUT.json (the eval JSON) and OUT.md (table, command, machine). Reuses the catalogue and the run's eval JSON
on it (``WORK/<catalogue>-<run folder name>-<run key>-eval.json``, the key a digest of the run's path and run.json,
so that another run in a folder of the same name is evaluated anew) if present.
Besides the five protocols it reports ``region_differ`` / ``region_match``, the two halves of ``region``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from benchmarks._report import command, machine, write_report

from fashionsearchnet.app.cli import main as fsn
from fashionsearchnet.evaluation.protocol import markdown_table


def run_key(run: str | Path) -> str:
    """A short digest of a run's resolved path and its run.json: the eval cache's key for this run."""
    run = Path(run).resolve()
    h = hashlib.sha256(str(run).encode())
    if (run / "run.json").is_file():
        h.update((run / "run.json").read_bytes())
    return h.hexdigest()[:10]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--count", type=int, default=4500)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--splits", default="0,0.8889,0.1111", help="train,gallery,query fractions (train must be 0)")
    ap.add_argument("--profile", default="basic", help="synthetic catalogue profile (must match the run's data)")
    ap.add_argument("--work", default="/tmp/fsn-tm")
    ap.add_argument("--out", default="benchmarks/experiments/methods/results/basic_24k_heldout4k")
    args = ap.parse_args(argv)
    default_size = args.count == 4500 and args.splits == "0,0.8889,0.1111"
    name = f"heldout-{args.count}" + ("" if default_size else "-" + args.splits.replace(",", "_"))
    data = Path(args.work) / (name + ("" if args.profile == "basic" else f"-{args.profile}"))
    if not (data / "attributes.csv").is_file():
        assert fsn(["synth", str(data), "--count", str(args.count), "--seed", str(args.seed),
                    "--splits", args.splits, "--profile", args.profile]) == 0
    js = Path(args.work) / f"{data.name}-{Path(args.run).resolve().name}-{run_key(args.run)}-eval.json"
    if not js.is_file():
        assert fsn(["eval", args.run, str(data), "--json", str(js), "--protocols",
                    "query,manipulation,region,region_differ,region_match,item,adde"]) == 0
    res = json.loads(js.read_text())
    md = [f"# Held-out synthetic catalogue ({args.profile} profile, seed {args.seed}, {args.count} images: gallery + query only, "
          f"splits {args.splits})", "",
          f"Command: `{command()}`", "", f"Run: `{args.run}`; machine: {machine()}", "",
          markdown_table(res, ks=(1, 5, 10, 30, 50)), ""]
    if any("prec5" in r for methods in res.values() for r in methods.values()):
        md += ["Precision@K: the share of the first K results that are hits (the paper's user-study measure at K = 5; "
               "for item, one right answer, at most 100/K).", "", markdown_table(res, ks=(1, 5, 10, 30), metric="prec"), ""]
    write_report(args.out, res, md)  # the JSON is the eval JSON itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
