"""fsn synth OUT --count N --seed S [--size PX] [--splits T,G,Q] [--no-masks] [--workers W] [--profile P]"""
from __future__ import annotations

import argparse
import logging

from fashionsearchnet.errors import UsageError

log = logging.getLogger(__name__)


def _splits(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give three fractions like 0.75,0.2,0.05") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three fractions like 0.75,0.2,0.05")
    return parts  # type: ignore[return-value]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder (created)")
    p.add_argument("--count", type=int, default=2000, help="number of images (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same catalogue)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--splits", type=_splits, default=(0.75, 0.20, 0.05),
                   help="train,gallery,query fractions (default 0.75,0.2,0.05)")
    p.add_argument("--no-masks", action="store_true", help="do not write masks/ (region label images)")
    p.add_argument("--workers", type=int, default=None,
                   help="rendering processes (default: one per CPU, at most 16); the output does not depend on it")
    p.add_argument("--profile", default="basic",
                   help="basic (5 attributes, default), detailed (8: adds fastening, pocket and print) or hard "
                        "(12: adds fit, hem, fabric and cuff) or ambiguous (the hard profile's labels; a quarter of the photos "
                        "upper-body close-ups, colour shades overlapping between neighbouring names) or regional (the basic "
                        "schema; families of products differing only in collar and sleeve colours, so that regional "
                        "requests have answers: the region-search benchmark's held-out catalogue)")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.synth import generate

    if args.count <= 0:
        raise UsageError(f"--count must be a positive number of images, got {args.count}")
    with bar(args.count, "synth", "img") as advance:
        out = generate(args.out, args.count, seed=args.seed, size=args.size, splits=args.splits,
                       masks=not args.no_masks, progress=advance, workers=args.workers,
                       profile=args.profile)
    log.info("wrote %d images to %s (attributes.csv, schema.json%s)", args.count, out,
             "" if args.no_masks else ", masks/")
    return 0
