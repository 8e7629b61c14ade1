"""``fsn engines BUNDLE [--fp16] [--max-batch N]``: build (or validate) the TensorRT engines of a bundle."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by fsn export")
    p.add_argument("--fp16", action="store_true",
                   help="FP16 engines (TensorRT 10: builder flag on an fp32 bundle; TensorRT 11: needs a bundle "
                        "exported with --precision fp16)")
    p.add_argument("--max-batch", type=int, default=64, help="largest batch of the optimisation profile (default 64)")
    p.add_argument("--opt-batch", type=int, default=1, help="batch the profile is tuned for (default 1)")
    p.add_argument("--cache", default=None, help="engine cache folder (default BUNDLE/engines)")
    p.add_argument("--no-rebuild", action="store_true", help="refuse stale engines instead of rebuilding them")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.errors import UsageError
    from fashionsearchnet.runtime.backends.trt import ensure_engines
    from fashionsearchnet.runtime.bundle import Bundle

    if args.max_batch < 1 or not 1 <= args.opt_batch <= args.max_batch:
        raise UsageError(f"--max-batch {args.max_batch} / --opt-batch {args.opt_batch}: need 1 <= opt <= max")
    bundle = Bundle.open(args.bundle)
    precision = "fp16" if args.fp16 else bundle.precision  # int8 bundles: Q/DQ in the ONNX, key "int8"
    paths = ensure_engines(bundle, precision, args.max_batch, args.opt_batch, args.cache,
                           rebuild=not args.no_rebuild, device_id=args.device)
    for g, p in paths.items():
        log.info("%s engine: %s", g, p)
    return 0
