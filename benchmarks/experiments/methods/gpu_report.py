"""Turn the files of one ``benchmarks/experiments/methods/gpu_run.sh`` run into ``OUT.md`` / ``OUT.json`` (tables, targets, timings).

    .venv/bin/python -m benchmarks.experiments.methods.gpu_report FILES_DIR --out benchmarks/experiments/methods/results/gpu

FILES_DIR holds what gpu_run.sh wrote to $OUT: log.txt, eval_synth.json, eval_real.json (optional),
localisation.json, ckpt/<method>.pt (per-stage metrics and rows/s are read from the checkpoints).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks._report import command, write_report
from benchmarks.experiments.methods.train_methods import _table, _targets


def _speed(ckpt_dir: Path) -> list[str]:
    from fashionsearchnet.training.checkpoint import Checkpoint

    lines = []
    for m in ("attribute", "no_aam", "fsn"):
        p = ckpt_dir / f"{m}.pt"
        if not p.is_file():
            lines.append(f"- {m}: no checkpoint (the run did not finish it)")
            continue
        met = Checkpoint.load(p).metrics
        parts = [f"stage 1 {met['stage1'][-1]['rows_per_s']:.0f} rows/s, {met.get('stage1_s', 0):.0f} s"]
        if met.get("stage2"):
            parts.append(f"stage 2 {met['stage2'][-1]['rows_per_s']:.0f} rows/s")
        parts.append(f"method total {met.get('method_s', 0):.0f} s")
        lines.append(f"- {m}: " + ", ".join(parts))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files")
    ap.add_argument("--out", default="benchmarks/experiments/methods/results/gpu")
    args = ap.parse_args(argv)
    src = Path(args.files)
    synth = json.loads((src / "eval_synth.json").read_text())
    real = json.loads((src / "eval_real.json").read_text()) if (src / "eval_real.json").is_file() else None
    loc = json.loads((src / "localisation.json").read_text()) if (src / "localisation.json").is_file() else None
    log = (src / "log.txt").read_text().splitlines()
    targets = _targets(synth)
    out = {"synthetic": synth, "real": real, "localisation": loc, "targets": targets, "log_head": log[:4]}
    md = ["# Training methods side by side on a GPU (`benchmarks/experiments/methods/gpu_run.sh`)", "",
          f"Command: `OUT=... bash benchmarks/experiments/methods/gpu_run.sh`, then `{command()}`", "",
          "Machine: " + "; ".join(log[:3]), "", "Training speed (last epoch):", "", *_speed(src / "ckpt"), "",
          "Timeline: " + "; ".join(x for x in log if x.startswith("[")), "",
          "## Synthetic catalogue", "", _table(synth, list(synth)), "",
          "Targets: " + "; ".join(f"{k} {v:+.2f}" for k, v in targets.items()), ""]
    if loc:
        fmt = lambda d: ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in d.items())  # noqa: E731
        md += [f"AAM box IoU ({loc['images']} gallery images): {fmt(loc['aam_box_iou'])}; whole map: "
               f"{fmt(loc['whole_map_iou'])}; region boxes: {fmt(loc['region_box_iou'])}.", ""]
    if real:
        md += ["## fashion-product-224 apparel", "", _table(real, list(real)), ""]
    write_report(args.out, out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
