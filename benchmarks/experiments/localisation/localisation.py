"""AAM and region boxes of a trained ``fsn`` run against the synthetic catalogue's true region masks.

    .venv/bin/python -m benchmarks.experiments.localisation.localisation --run /tmp/fsn-tm3/run-synth-edge \
        --data /tmp/fsn-tm3/heldout-4500 --out benchmarks/experiments/localisation/results/basic_24k_heldout4k

Mean IoU of each box with its true region (evaluation/localisation.py), the share of the region's pixels inside
the box, and a whole-map box for comparison, over the first ``--images`` gallery images. Writes OUT.json/.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._report import command, machine, write_report
from benchmarks.experiments.methods.train_methods import _localisation

from fashionsearchnet.data.dataset import load_dataset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder with an fsn method")
    ap.add_argument("--data", required=True, help="a synthetic catalogue with masks/")
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--out", default="benchmarks/experiments/localisation/results/basic_24k_heldout4k")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    loc = _localisation(Path(args.run), ds, ds.indices("gallery")[: args.images], "cpu")
    cmd, mach = command(), machine()
    keys = [k for k in loc["aam_box_iou"]]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    md = [f"# Localisation of the fsn boxes ({loc['images']} gallery images of `{args.data}`)", "",
          f"Command: `{cmd}`", "", f"Machine: {mach}", "",
          "| box | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
          "| AAM box IoU | " + " | ".join(fmt(loc["aam_box_iou"][k]) for k in keys) + " |",
          "| whole-map box IoU | " + " | ".join(fmt(loc["whole_map_iou"][k]) for k in keys) + " |",
          "| share of the region inside the AAM box | " + " | ".join(fmt(loc["aam_box_coverage"][k]) for k in keys)
          + " |", "",
          f"Mean AAM box area: {loc['aam_box_area']:.2f} of the conv5 map. Region boxes: IoU "
          + ", ".join(f"{k} {fmt(v)}" for k, v in loc["region_box_iou"].items()) + "; share inside "
          + ", ".join(f"{k} {fmt(v)}" for k, v in loc["region_box_coverage"].items()) + ".", ""]
    write_report(args.out, {"command": cmd, "machine": mach, **loc}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
