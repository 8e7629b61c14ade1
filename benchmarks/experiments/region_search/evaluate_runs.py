"""The region-search study's evaluation (issue 17): every method of every training seed's run on one held-out
catalogue, medians and ranges over seeds, and the issue's target rows.

    .venv/bin/python -m benchmarks.experiments.region_search.evaluate_runs \\
        --run 0=/work/runs/region/edge-s0 --run 1=/work/runs/region/edge-s1 \\
        --data /tmp/fsn-region/heldout-regional-4500 \\
        --out benchmarks/experiments/region_search/results/regional_heldout4k

``--data`` is a held-out catalogue, e.g. ``fsn synth /tmp/fsn-region/heldout-regional-4500 --profile regional
--count 4500 --seed 101 --splits 0,0.8889,0.1111`` (~4,000 gallery; ``--count 22021 --splits 0,0.9092,0.0908``
for ~20,000). Each run is evaluated with ``fsn eval RUN DATA --protocols`` manipulation, region, region_part,
region_primary, region_specificity, localisation (methods attribute, no_aam, fsn, fsn_region: whichever the run
has); the eval JSON of each run is kept in ``--work`` and reused (keyed by the catalogue, the run's path and its
run.json, as methods/heldout_eval.py does). Writes OUT.json (per-seed results, summaries, targets) and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

from benchmarks._report import command, machine, write_report
from benchmarks._seeds import differences_section, method_rows, spread, summarise
from benchmarks.experiments.methods.heldout_eval import run_key

from fashionsearchnet.app.cli import main as fsn
from fashionsearchnet.whole_numbers import whole_number

PROTOCOLS = ("manipulation", "region", "region_part", "region_primary")
FIGURES = ("region_specificity", "localisation")
METHODS = ("attribute", "no_aam", "fsn", "fsn_region")
KS = (1, 5, 30)
NAN = float("nan")


def _get(r: dict, *keys: str) -> float:
    for k in keys:
        if not isinstance(r, dict) or k not in r:
            return NAN
        r = r[k]
    return float(r) if isinstance(r, (int, float)) else NAN


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else NAN


# (name, per-seed value from one eval result, target text, met(median))
Target = tuple[str, Callable[[dict], float], str, Callable[[float], bool] | None]
TARGETS: tuple[Target, ...] = (
    ("region_part Top-5, fsn_region / fsn",
     lambda r: _ratio(_get(r, "region_part", "fsn_region", "top5"), _get(r, "region_part", "fsn", "top5")),
     ">= 2x", lambda v: v >= 2.0),
    ("region_part Top-30, fsn_region / fsn",
     lambda r: _ratio(_get(r, "region_part", "fsn_region", "top30"), _get(r, "region_part", "fsn", "top30")),
     ">= 2x", lambda v: v >= 2.0),
    ("region_primary Top-1, fsn_region − fsn",
     lambda r: _get(r, "region_primary", "fsn_region", "top1") - _get(r, "region_primary", "fsn", "top1"),
     ">= -1 point", lambda v: v >= -1.0),
    ("manipulation Top-1, fsn_region − fsn",
     lambda r: _get(r, "manipulation", "fsn_region", "top1") - _get(r, "manipulation", "fsn", "top1"),
     ">= -1 point", lambda v: v >= -1.0),
    ("region_specificity sleeve:color (fsn), %", lambda r: _get(r, "region_specificity", "fsn", "sleeve:color"),
     ">= 80%", lambda v: v >= 80.0),
    ("region_specificity collar:color (fsn), %", lambda r: _get(r, "region_specificity", "fsn", "collar:color"),
     ">= 80%", lambda v: v >= 80.0),
    ("localisation IoU color (fsn)", lambda r: _get(r, "localisation", "fsn", "color"), ">= 0.6",
     lambda v: v >= 0.6),
    ("localisation IoU sleeve (fsn)", lambda r: _get(r, "localisation", "fsn", "sleeve"), ">= 0.5",
     lambda v: v >= 0.5),
    ("localisation IoU collar (fsn)", lambda r: _get(r, "localisation", "fsn", "collar"), ">= 0.3",
     lambda v: v >= 0.3),
    ("manipulation Top-30, fsn − no_aam",
     lambda r: _get(r, "manipulation", "fsn", "top30") - _get(r, "manipulation", "no_aam", "top30"),
     "reported; >= +3 wanted (20k gallery)", lambda v: v >= 3.0),
    ("manipulation Top-1, fsn − no_aam",
     lambda r: _get(r, "manipulation", "fsn", "top1") - _get(r, "manipulation", "no_aam", "top1"),
     "reported", None),
)


def parse_runs(items: list[str], error: Callable[[str], None]) -> dict[int, Path]:
    runs: dict[int, Path] = {}
    for item in items:
        seed, sep, path = item.partition("=")
        s = whole_number(seed, strings=True)
        if not sep or s is None or not path:
            error(f"--run {item!r}: give SEED=RUN_FOLDER, e.g. 0=/work/runs/region/edge-s0")
        runs[s] = Path(path)
    return runs


def eval_run(run: Path, data: Path, work: Path, max_queries: int | None, device: str) -> dict:
    """``fsn eval RUN DATA`` with the study's protocols (its JSON cached in ``work``)."""
    mq = "" if max_queries is None else f"-q{max_queries}"
    js = work / f"{data.name}-{run.resolve().name}-{run_key(run)}{mq}-regioneval.json"
    if not js.is_file():
        work.mkdir(parents=True, exist_ok=True)
        argv = ["eval", str(run), str(data), "--json", str(js), "--device", device,
                "--protocols", ",".join(PROTOCOLS + FIGURES)]
        if max_queries is not None:
            argv += ["--max-queries", str(max_queries)]
        rc = fsn(argv)
        if rc != 0:
            raise SystemExit(f"fsn eval {run} {data} failed (exit {rc}); see the message above")
    return json.loads(js.read_text())


def targets(per_seed: dict[int, dict]) -> dict[str, dict]:
    """{target name: spread of its per-seed values + "target" text + "met" (median meets it; None: reported)}."""
    out = {}
    for name, value, text, met in TARGETS:
        vals = [value(per_seed[s]) for s in sorted(per_seed)]
        st = spread(vals)
        ok = None if met is None or math.isnan(st["median"]) else bool(met(st["median"]))
        out[name] = {**st, "target": text, "met": ok}
    return out


def figure_spread(per_seed: dict[int, dict], figure: str, method: str) -> dict[str, dict]:
    """{key: spread over seeds} of a figure's numeric entries present in every seed."""
    seeds = sorted(per_seed)
    keys = [k for k, v in per_seed[seeds[0]].get(figure, {}).get(method, {}).items()
            if isinstance(v, (int, float)) and k != "n" and not k.startswith("n:")]
    return {k: spread([_get(per_seed[s], figure, method, k) for s in seeds]) for k in keys
            if all(k in per_seed[s].get(figure, {}).get(method, {}) for s in seeds)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="SEED=RUN", help="one per training seed")
    ap.add_argument("--data", required=True, help="held-out catalogue (fsn synth --profile regional ...)")
    ap.add_argument("--work", default="/tmp/fsn-region", help="where the per-run eval JSONs are kept and reused")
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/experiments/region_search/results/regional_heldout4k")
    args = ap.parse_args(argv)
    runs = parse_runs(args.run, ap.error)
    data = Path(args.data)
    if not (data / "attributes.csv").is_file():
        ap.error(f"--data {data}: no attributes.csv; generate it first, e.g. fsn synth {data} --profile regional "
                 "--count 4500 --seed 101 --splits 0,0.8889,0.1111")
    per_seed = {s: eval_run(r, data, Path(args.work), args.max_queries, args.device) for s, r in sorted(runs.items())}
    seeds = sorted(per_seed)
    protocols = [p for p in PROTOCOLS if all(p in per_seed[s] for s in seeds)]
    methods = [m for m in METHODS if all(m in per_seed[s][p] for s in seeds for p in protocols)]
    others = [m for m in ("attribute", "no_aam") if m in methods]
    summ = summarise(per_seed, protocols, methods, others if "fsn" in methods else [], KS)
    figs = {f: {m: figure_spread(per_seed, f, m) for m in METHODS if all(m in per_seed[s].get(f, {}) for s in seeds)}
            for f in FIGURES}
    tg = targets(per_seed)
    cmd, mach = command(), machine()
    result = {"command": cmd, "machine": mach, "data": str(data), "runs": {str(s): str(runs[s]) for s in seeds},
              "seeds": seeds, "results": {str(s): per_seed[s] for s in seeds}, "summary": summ, "figures": figs,
              "targets": tg}
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"  # noqa: E731
    md = [f"# Region search: {len(seeds)} training seeds on `{data}`", "", f"Command: `{cmd}`", "",
          f"Machine: {mach}", "", "Runs: " + ", ".join(f"seed {s} `{runs[s]}`" for s in seeds), "",
          "## Targets (issue 17), median over seeds (min to max)", "",
          "| measure | value | target | met |", "|---|---|---|---|"]
    for name, t in tg.items():
        met = "reported" if t["met"] is None else ("yes" if t["met"] else "**missed**")
        md.append(f"| {name} | {fmt(t['median'])} ({fmt(t['min'])} to {fmt(t['max'])}) | {t['target']} | {met} |")
    md += ["", "## Top-K, median over seeds (min to max); with two seeds the median is the mean", "",
           "| protocol | method | " + " | ".join(f"top{k}" for k in KS) + " | n |",
           "|---|---|" + "---|" * (len(KS) + 1)]
    md += method_rows(per_seed, summ, protocols, methods, KS)
    md += differences_section(summ, protocols, others if "fsn" in methods else [], KS)
    for f in FIGURES:
        for m, vals in figs[f].items():
            if vals:
                md += ["", f"{f}, {m}: " + ", ".join(f"{k} {fmt(v['median'])} ({fmt(v['min'])} to {fmt(v['max'])})"
                                                     for k, v in vals.items())]
    md += ["", "region_specificity: percent of the held-out two-tone items whose region representation is nearest to "
           "the prototype of the region's true value; localisation: mean box IoU with the true region (masks)."]
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
