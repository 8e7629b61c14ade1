"""fsn demo --out DIR: synthesise a catalogue, train the edge preset briefly, export, index, run example searches
(by photo, attribute manipulation, region-specific) and write DIR/report.html (the same facts as data in
DIR/report.json). A rerun reuses what exists."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from fashionsearchnet.app.argtypes import stage_epochs

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fashionsearchnet.app.demo import DemoConfig

    d = DemoConfig()
    p.add_argument("--out", default="demo-out", help="folder for everything the demo builds (default demo-out)")
    p.add_argument("--count", type=int, default=d.count, help=f"catalogue size (default {d.count})")
    p.add_argument("--size", type=int, default=d.size, help=f"image side in pixels (default {d.size})")
    p.add_argument("--preset", default=d.preset, help=f"network preset: edge | tiny | paper (default {d.preset})")
    p.add_argument("--epochs", type=stage_epochs, default=d.epochs,
                   help="training epochs per stage: E or E1,E2,E3 (default %s)" % ",".join(map(str, d.epochs)))
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"SGD learning rate (default {d.lr})")
    p.add_argument("--reference-count", type=int, default=d.reference_count,
                   help=f"images of the reference bundle's catalogue (default {d.reference_count}; only when the "
                        "package ships app/demo/reference/)")
    p.add_argument("--no-reference", action="store_true",
                   help="answer the report's searches and the kiosk with the freshly trained model even when the "
                        "package ships a reference bundle")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.app.demo import DemoConfig, build
    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.errors import UsageError

    if args.count < 50:
        raise UsageError(f"--count {args.count}: give at least 50 images so every split has items")
    if args.reference_count < 50:
        raise UsageError(f"--reference-count {args.reference_count}: give at least 50 images so every split has items")
    cfg = DemoConfig(count=args.count, size=args.size, seed=args.seed, preset=args.preset, epochs=args.epochs,
                     lr=args.lr, reference_count=args.reference_count)
    t0 = time.perf_counter()
    res = build(args.out, cfg, bars=lambda total, desc: bar(total, desc, "it"),
                **({"reference": None} if args.no_reference else {}))
    took = time.perf_counter() - t0
    built = ", ".join(f"{k} " + ("reused" if v["reused"] else f"{v['seconds']:.0f} s") for k, v in res.steps.items())
    sys.stdout.write(
        f"\nDemo ready in {took:.0f} s ({built}).\n"
        f"  report:  {res.report}\n"
        f"  serve:   fsn serve {res.gallery} --port 8080   then open http://127.0.0.1:8080/\n"
    )
    return 0
