"""``fsn engines BUNDLE [--fp16] [--max-batch N] [--opt-batch N] [--tf32]``: build (or validate) the TensorRT
engines of a bundle and record the configuration, so the runtime (``--backend trt``/``auto``) opens these engines.

Each graph's line says ``cached`` (a valid engine was there), ``built`` or ``rebuilt`` (a stale one was replaced)."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

STATE_WORDS = {"use": "cached", "build": "built", "rebuild": "rebuilt"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by fsn export")
    p.add_argument("--fp16", action="store_true",
                   help="FP16 engines (TensorRT 10: builder flag on an fp32 bundle; TensorRT 11: needs a bundle "
                        "exported with --precision fp16)")
    p.add_argument("--max-batch", type=int, default=64, help="largest batch of the optimisation profile (default 64)")
    p.add_argument("--opt-batch", type=int, default=1,
                   help="batch the profile is tuned for (default 1: kiosk latency; a throughput server: its usual batch)")
    p.add_argument("--tf32", action="store_true",
                   help="let fp32 layers use TF32 on Ampere and later (faster, ~1e-3 error; off by default so fp32 "
                        "engines match ONNX Runtime)")
    p.add_argument("--cache", default=None,
                   help="engine cache folder (default BUNDLE/engines; a read-only bundle: "
                        "$XDG_CACHE_HOME/fashionsearchnet/engines/<bundle>)")
    p.add_argument("--no-rebuild", action="store_true", help="refuse stale engines instead of rebuilding them")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.runtime import engine_cache
    from fashionsearchnet.runtime.backends.trt import BuildConfig, ensure_engines, import_cudart, import_tensorrt
    from fashionsearchnet.runtime.bundle import Bundle

    bundle = Bundle.open(args.bundle)
    precision = "fp16" if args.fp16 else bundle.precision  # int8 bundles: Q/DQ in the ONNX, key "int8"
    config = BuildConfig(precision, args.max_batch, args.opt_batch, args.tf32)
    import_tensorrt()  # both first: "not installed" names the extra before any folder is touched
    import_cudart()
    dirs = engine_cache.cache_dirs(bundle.path, args.cache)
    done = ensure_engines(bundle, config, dirs, rebuild=not args.no_rebuild, device_id=args.device)
    for g, (path, state) in done.items():
        log.info("%s engine (%s): %s", g, STATE_WORDS[state], path)
    sel = engine_cache.write_selection(dirs[0], config.precision, config.max_batch, config.opt_batch, config.tf32)
    log.info("recorded in %s: --backend trt/auto opens these engines", sel)
    return 0
