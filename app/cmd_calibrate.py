"""``fsn calibrate RUN [--data DATA] [--rows 1000] [--seed 17] [--out FILE]``: issue 17's validation choices for a
finished fsn run (per-map ROI thresholds and CAM upsampling, region-specific prototypes, fsn_region's terms),
written into RUN/fsn/checkpoint.pt atomically (training/calibrate.py). Re-export the bundle afterwards."""
from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (RUN/fsn/checkpoint.pt), the fsn folder or the checkpoint")
    p.add_argument("--data", metavar="DATA", default=None,
                   help="the dataset folder the run was trained on (default: the one the checkpoint records)")
    p.add_argument("--rows", type=_positive, default=1000, metavar="N",
                   help="validation rows drawn from the training split (default 1000)")
    p.add_argument("--seed", type=int, default=17, help="seed of the validation draw (default 17)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the calibrated checkpoint here instead of replacing RUN's (atomic either way)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fashionsearchnet.export.exporter import resolve_run
    from fashionsearchnet.fileio import atomic_write_text
    from fashionsearchnet.training.calibrate import calibrate_checkpoint

    ckpt = resolve_run(args.run, "fsn")
    rep = calibrate_checkpoint(ckpt, data=args.data, rows=args.rows, seed=args.seed, out=args.out)
    r = rep.get("roi", {})
    if "iou" in r:
        log.info("ROI: upsample %dx, thresholds %s", r["upsample"], json.dumps(r["thresholds"]))
        log.info("validation box IoU: %s (0.2 boxes: %s)", json.dumps(r["iou"]), json.dumps(r["iou_default"]))
        c = r["retrieval_check"]
        log.info("validation fsn manipulation Top-1/10/30: training boxes %.1f/%.1f/%.1f, calibrated boxes "
                 "%.1f/%.1f/%.1f; heads pool the %s", c["training_boxes"]["top1"], c["training_boxes"]["top10"],
                 c["training_boxes"]["top30"], c["calibrated_boxes"]["top1"], c["calibrated_boxes"]["top10"],
                 c["calibrated_boxes"]["top30"], c["heads_use"].replace("_", " "))
    else:
        log.info("ROI: %s", r.get("skipped"))
    t = rep.get("region_terms", {})
    if "weight" in t:
        part, prim = t["part"], t["primary"]
        log.info("fsn_region terms: weight %g, torso weight %g, untouched pairs %g", t["weight"],
                 t["primary_weight"], t["region_weight"])
        log.info("validation collar/sleeve requests, Top-5 / precision@10: fsn %.1f / %.1f, fsn_region %.1f / %.1f "
                 "(n=%d)", part["fsn"]["top5"], part["fsn"]["prec10"], part["fsn_region"]["top5"],
                 part["fsn_region"]["prec10"], part["fsn"]["n"])
        if prim:
            log.info("validation torso requests Top-1: fsn %.1f, fsn_region %.1f (n=%d)", prim["fsn"]["top1"],
                     prim["fsn_region"]["top1"], prim["fsn"]["n"])
    else:
        log.info("fsn_region terms: %s", t.get("skipped"))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(rep, indent=2, default=float))
    log.info("wrote %s; re-export the bundle (fsn export) to ship the calibration", args.out or ckpt)
    return 0
