"""How many regional requests a held-out synthetic catalogue asks: pair counts of ``region``, ``region_part`` and
``region_primary`` per region, from the labels alone (no image is drawn; the labels, splits and item ids of
``fsn synth`` depend on the seed only).

    .venv/bin/python -m benchmarks.experiments.region_search.catalogue_pairs \\
        --out benchmarks/experiments/region_search/results/catalogue_pairs

For each profile and size (default: basic and regional, 4,500 images split 0,0.8889,0.1111 = ~4,000 gallery and
22,021 images split 0,0.9092,0.0908 = ~20,000 gallery, seed 101 as the other held-out catalogues) it reports the
pairs per protocol and region, each region's share of the ``region`` pairs, and the share of the pairs answered
only by the query's own ``item_id`` (its colour variant). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks._report import command, machine, write_report

from fashionsearchnet.data.dataset import Dataset, load_dataset, write_dataset
from fashionsearchnet.data.synth.writer import catalogue_rows
from fashionsearchnet.evaluation.protocol import Task, build_task, own_item_only, region_subtask

SIZES = {"4k": (4500, "0,0.8889,0.1111"), "20k": (22021, "0,0.9092,0.0908")}
PROTOCOLS = ("region", "region_part", "region_primary")


def label_only(count: int, seed: int, splits: tuple[float, float, float], profile: str, folder: Path) -> Dataset:
    """The catalogue's labels (attributes.csv and schema), no images, loaded as a Dataset."""
    header, rows, schema, _ = catalogue_rows(count, seed, splits, profile)
    write_dataset(folder, header, rows, schema)
    return load_dataset(folder, check_images=False)


def region_of(task: Task) -> list[str]:
    return [req.region[0][0] for req in task.requests]


def pair_counts(ds: Dataset) -> dict:
    """{protocol: {"n": pairs, "<region>": pairs, "own_item_only": share, "own_item_only:<region>": share,
    "share:<region>": share of the protocol's pairs}}."""
    out = {}
    region = build_task(ds, "region")
    for proto in PROTOCOLS:
        task = region if proto == "region" else region_subtask(ds, region, proto)
        regions = np.array(region_of(task), dtype=object)
        own = own_item_only(ds, task) if len(task.query_rows) else np.zeros(0, bool)
        r: dict = {"n": int(len(task.query_rows))}
        for reg, n in sorted(Counter(regions.tolist()).items()):
            r[reg] = int(n)
            r[f"share:{reg}"] = round(100.0 * n / len(regions), 1)
            r[f"own_item_only:{reg}"] = round(100.0 * float(own[regions == reg].mean()), 1)
        r["own_item_only"] = round(100.0 * float(own.mean()), 1) if len(own) else 0.0
        out[proto] = r
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="basic,regional")
    ap.add_argument("--sizes", default="4k,20k", help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--out", default="benchmarks/experiments/region_search/results/catalogue_pairs")
    args = ap.parse_args(argv)
    res: dict = {"command": command(), "machine": machine(), "catalogues": {}}
    md = ["# Regional requests of the held-out synthetic catalogues (labels only)", "",
          f"Command: `{res['command']}`", "", f"Machine: {res['machine']}", "",
          "Per catalogue, protocol and region: the (query, request) pairs kept, the region's share of the "
          "protocol's pairs, and the share of them answered only by the query's own item_id (its colour variant; "
          "region_part never keeps such a pair, so its share is 0 by construction).", ""]
    table = ["| catalogue | protocol | region | pairs | share of the protocol's pairs "
             "| answered only by the own item |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            for size in args.sizes.split(","):
                count, splits = SIZES[size]
                fr = tuple(float(x) for x in splits.split(","))
                ds = label_only(count, args.seed, fr, profile, Path(tmp) / f"{profile}-{size}")
                c = pair_counts(ds)
                synth = (f"fsn synth OUT --profile {profile} --count {count} --seed {args.seed} --splits {splits}")
                key = f"{profile}-{size}"
                res["catalogues"][key] = {"synth": synth, "gallery": int(len(ds.indices("gallery"))),
                                          "queries": int(len(ds.indices("query"))), "pairs": c}
                for proto, r in c.items():
                    for reg in ("torso", "sleeve", "collar"):
                        if reg in r:
                            table.append(f"| {key} | {proto} | {reg} | {r[reg]} | {r[f'share:{reg}']:.1f}% | "
                                         f"{r[f'own_item_only:{reg}']:.1f}% |")
                    table.append(f"| {key} | {proto} | all | {r['n']} | 100% | {r['own_item_only']:.1f}% |")
    md += ["Catalogues (seed " + str(args.seed) + "):", ""]
    md += [f"- `{k}`: `{v['synth']}` (gallery {v['gallery']}, queries {v['queries']})"
           for k, v in res["catalogues"].items()]
    md += [""] + table
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
