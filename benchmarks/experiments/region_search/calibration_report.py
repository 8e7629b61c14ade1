"""What ``fsn calibrate`` chose for a run and what it measured on validation, as a results table (issue 17).

    fsn calibrate RUN                       # writes RUN/fsn/checkpoint.pt's ``calibration``
    .venv/bin/python -m benchmarks.experiments.region_search.calibration_report --run RUN \
        --calibrate-command "fsn calibrate RUN" --out benchmarks/experiments/region_search/results/calibration_edge_s0

Reads the checkpoint's ``calibration`` report (training/calibrate.py) and writes OUT.json / OUT.md: the chosen ROI
thresholds and upsampling with the validation box IoU (chosen vs the paper's 0.2), the retrieval check that
decided which boxes the heads pool, and the fsn_region term weights with the validation figures they were chosen on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._report import command, machine, write_report


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) and abs(v) < 1.5 else f"{v:.1f}"


def markdown(cal: dict, cmd: str, calibrate_cmd: str, mach: str) -> list[str]:
    v = cal["validation"]
    md = [f"# fsn calibrate: validation choices for `{cal['data']}`", "",
          f"Calibration: `{calibrate_cmd}`", "", f"Report: `{cmd}`", "", f"Machine: {mach}", "",
          f"Validation split: {v['rows']} of {v['of_train_rows']} training rows (seed {v['seed']}), "
          f"{v['queries']} of them queries, the rest the gallery.", ""]
    r = cal.get("roi", {})
    if "iou" in r:
        th = {**r["thresholds"]["attributes"], **{f"region:{k}": t for k, t in r["thresholds"]["regions"].items()}}
        keys = list(r["iou"])
        md += ["## ROI step", "", f"CAM upsampling: {r['upsample']}x.", "",
               "| map | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
               "| threshold | " + " | ".join(f"{th.get(k, 0.2):g}" for k in keys) + " |",
               "| box IoU, chosen | " + " | ".join(_fmt(r["iou"][k]) for k in keys) + " |",
               "| box IoU, 0.2 (training boxes) | " + " | ".join(_fmt(r["iou_default"][k]) for k in keys) + " |", "",
               f"Mean IoU {r['mean_iou']:.3f} (0.2: {r['mean_iou_default']:.3f}).", ""]
        c = r["retrieval_check"]
        md += ["Retrieval with the heads pooling each box set (fsn, manipulation protocol on the validation rows, "
               "prototypes from those rows):", "", "| heads pool | Top-1 | Top-10 | Top-30 | n |", "|---|---|---|---|---|"]
        for name in ("training_boxes", "calibrated_boxes"):
            x = c[name]
            md.append(f"| {name.replace('_', ' ')} | {x['top1']:.1f} | {x['top10']:.1f} | {x['top30']:.1f} | {x['n']} |")
        md += ["", f"Decision: the heads pool the **{c['heads_use'].replace('_', ' ')}**; the calibrated boxes are "
               "the display/localisation boxes" + (" only." if c["heads_use"] == "training_boxes" else "."), ""]
    else:
        md += ["## ROI step", "", str(r.get("skipped")), ""]
    h = cal.get("region_heads")
    if h and "conv5" in h:
        cands = [k for k in h if "/" in k]
        pairs = [k for k in h["conv5"] if k != "mean"]
        samples = h.get("fit_samples", h["fit_rows"])
        mirrored = f" ({samples} samples with the mirrored images)" if samples > h["fit_rows"] else ""
        md += ["## Region heads", "",
               f"Fitted on {h['fit_rows']} training rows{mirrored}, region specificity (%) measured on "
               f"{h['measured_rows']} rows "
               f"({h['measured_two_tone']} two-tone); conv5 = the attribute heads' own region representations.", "",
               "| representation | " + " | ".join(pairs) + " | mean |", "|---|" + "---|" * (len(pairs) + 1)]
        for k in ["conv5", *cands]:
            md.append(f"| {k} | " + " | ".join(f"{h[k].get(p, float('nan')):.1f}" for p in pairs)
                      + f" | {h[k].get('mean', float('nan')):.1f} |")
        md += ["", f"Chosen: **{h['chosen']}** ({h['seconds']:.0f} s).", ""]
    elif h:
        md += ["## Region heads", "", str(h.get("skipped")), ""]
    t = cal.get("region_terms", {})
    if "weight" in t:
        md += ["## fsn_region terms", "",
               f"weight {t['weight']:g} (requested collar/sleeve pair), torso weight {t['primary_weight']:g}, untouched "
               f"pairs {t['region_weight']:g} x weight; global scale {t['global_scale']:.4g}, pair scales "
               + ", ".join(f"{x:.4g}" for x in t["pair_scales"]) + ".", "", f"Objective: {t['objective']}.", "",
               "| requests | method | Top-1 | Top-5 | Top-10 | Top-30 | precision@10 | n |", "|---|---|---|---|---|---|---|---|"]
        for label, key in (("collar/sleeve (two-tone)", "part"), ("torso", "primary")):
            if not t.get(key):
                continue
            for m in ("fsn", "fsn_region", "global_term_only"):
                if m not in t[key]:
                    continue
                x = t[key][m]
                md.append(f"| {label} | {m} | {x['top1']:.1f} | {x['top5']:.1f} | {x['top10']:.1f} | {x['top30']:.1f} "
                          f"| {x['prec10']:.1f} | {x['n']} |")
        md += ["", "global_term_only: fsn_region with weight 0 (the query's global representation without any change: "
               "what keeping the torso alone gives).", "", "Grid (collar/sleeve requests): " + "; ".join(
            f"w {g['weight']:g}/untouched {g['region_weight']:g}: Top-5 {g['top5']:.1f}, p@10 {g['prec10']:.1f}"
            for g in t["grid"]) + ".", "",
               "Grid (torso requests, Top-1): " + "; ".join(f"{g['primary_weight']:g}: {g['top1']:.1f}"
                                                          for g in t["primary_grid"]) + ".", ""]
    else:
        md += ["## fsn_region terms", "", str(t.get("skipped")), ""]
    return md


def main(argv=None) -> int:
    from fashionsearchnet.training.checkpoint import Checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a calibrated run folder (RUN/fsn/checkpoint.pt)")
    ap.add_argument("--calibrate-command", default="fsn calibrate RUN", help="how the run was calibrated")
    ap.add_argument("--out", required=True, help="results path without suffix")
    args = ap.parse_args(argv)
    ck = Checkpoint.load(Path(args.run) / "fsn")
    if not ck.calibration:
        sys.stderr.write(f"{args.run}: the fsn checkpoint is not calibrated; run `fsn calibrate {args.run}` first\n")
        return 2
    cmd, mach = command(), machine()
    write_report(args.out, {"command": cmd, "calibrate_command": args.calibrate_command, "machine": mach,
                            **ck.calibration}, markdown(ck.calibration, cmd, args.calibrate_command, mach))
    return 0


if __name__ == "__main__":
    sys.exit(main())
