"""Several training seeds of one benchmark, side by side: median (min to max) of each method and of the same-seed
differences fsn − attribute and fsn − no_aam, from evaluation JSONs already written.

    .venv/bin/python -m benchmarks.experiments.seeds.seed_summary \\
        --run 0=benchmarks/experiments/methods/results/hard_24k_heldout4k.json \\
        --run 1=benchmarks/experiments/seeds/results/hard_24k_seed1_heldout4k.json \\
        --title "Hard profile, held-out 4k gallery" --out benchmarks/experiments/seeds/results/hard_2seeds_heldout4k

Each ``--run SEED=FILE`` is a ``fsn eval`` / ``heldout_eval.py`` JSON (``{protocol: {method: {...}}}``) or a
``train_methods.py`` JSON (its ``synthetic`` results are used). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks._report import command, machine, write_report
from benchmarks._seeds import differences_section, method_rows, summarise

from fashionsearchnet.whole_numbers import whole_number

KS = (1, 10, 30)


def load_results(path: str | Path) -> dict:
    """The ``{protocol: {method: {...}}}`` part of an evaluation or train_methods JSON."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read an evaluation JSON ({e}); check the --run path") from None
    if isinstance(d, dict) and isinstance(d.get("synthetic"), dict):
        d = d["synthetic"]["results"]
    if not isinstance(d, dict) or not all(isinstance(v, dict) for v in d.values()):
        raise SystemExit(f"{path}: not an evaluation result ({{protocol: {{method: ...}}}}); pass a fsn eval, "
                         "heldout_eval.py or train_methods.py JSON")
    return d


def common_protocols(per_seed: dict[int, dict], wanted: list[str]) -> list[str]:
    """The protocols of ``wanted`` present in every seed's results, in ``wanted`` order."""
    return [p for p in wanted if all(p in r for r in per_seed.values())]


def region_ratios(per_seed: dict[int, dict], protocols: list[str]) -> dict[str, list[float]]:
    """fsn_region / fsn Top-30 per seed, for each region protocol present."""
    out = {}
    for p in protocols:
        if p.startswith("region") and all("fsn_region" in r[p] and "fsn" in r[p] for r in per_seed.values()):
            out[p] = [per_seed[s][p]["fsn_region"]["top30"] / max(per_seed[s][p]["fsn"]["top30"], 1e-9)
                      for s in sorted(per_seed)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="SEED=FILE", help="one per seed")
    ap.add_argument("--protocols", default="manipulation,region,region_differ,item,adde")
    ap.add_argument("--methods", default="attribute,no_aam,fsn,fsn_region")
    ap.add_argument("--title", default="Training seeds side by side")
    ap.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    files: dict[int, str] = {}
    for item in args.run:
        seed, sep, path = item.partition("=")
        s = whole_number(seed, strings=True)
        if not sep or s is None:
            ap.error(f"--run {item!r}: give SEED=FILE, e.g. 0=results/eval.json")
        files[s] = path
    per_seed = {s: load_results(f) for s, f in files.items()}
    protocols = common_protocols(per_seed, args.protocols.split(","))
    methods = [m for m in args.methods.split(",") if all(m in per_seed[s][p] for s in per_seed for p in protocols)]
    others = [m for m in ("attribute", "no_aam") if m in methods]
    summ = summarise(per_seed, protocols, methods, others, KS)
    ratios = region_ratios(per_seed, protocols)
    seeds = sorted(per_seed)
    cmd = command()
    result = {"command": cmd, "machine": machine(), "files": {str(s): files[s] for s in seeds}, "seeds": seeds,
              "summary": summ, "fsn_region_over_fsn_top30": ratios}
    md = [f"# {args.title}: {len(seeds)} training seeds", "", f"Command: `{cmd}`", "",
          "Inputs: " + ", ".join(f"seed {s} `{files[s]}`" for s in seeds), "",
          "Median over seeds (min to max); with two seeds the median is the mean:", "",
          "| protocol | method | " + " | ".join(f"top{k}" for k in KS) + " | n |", "|---|---|" + "---|" * (len(KS) + 1)]
    md += method_rows(per_seed, summ, protocols, methods, KS)
    md += differences_section(summ, protocols, others, KS)
    if ratios:
        md += ["", "fsn_region / fsn at Top-30, per seed:", ""]
        md += [f"- {p}: " + ", ".join(f"seed {s} {v:.2f}x" for s, v in zip(seeds, vals)) for p, vals in ratios.items()]
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
