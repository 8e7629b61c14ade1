"""fsn eval RUN DATA --json OUT [--protocols P,...] [--seed S] [--max-queries N]: every trained method of RUN
(fsn also as fsn_region) on every protocol, through the PyTorch reference path; prints a markdown table."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fashionsearchnet.app import backend_options
from fashionsearchnet.errors import UsageError
from fashionsearchnet.fileio import atomic_write_text

log = logging.getLogger(__name__)


def _weight(text: str) -> float:
    try:
        w = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number between 0 and 1") from None
    if not 0.0 <= w <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: give a number between 0 and 1")
    return w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder written by 'fsn train', or a bundle folder written by 'fsn export'")
    p.add_argument("data", help="dataset folder (the same schema as the run)")
    p.add_argument("--json", required=True, help="write the results here (JSON)")
    p.add_argument("--protocols", default=None,
                   help="comma list of query, manipulation, region, item, adde, region_part, region_primary, "
                        "region_differ, region_match and the figures region_specificity, localisation (default: "
                        "every one the data support; one asked for that the data cannot support is an error); "
                        "also compose (queries described by values, no image; only when named)")
    p.add_argument("--methods", default=None, help="comma list of trained methods to evaluate (default all found)")
    p.add_argument("--seed", type=int, default=0, help="query sampling seed (default 0)")
    p.add_argument("--max-queries", type=int, default=None, help="cap on queries per protocol")
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda (default cpu); with --backend openvino an OpenVINO device (CPU, GPU, NPU, AUTO)")
    p.add_argument("--region-weight", type=_weight, default=None,
                   help="fsn_region down-weight of the representations a region request does not touch, in [0, 1] "
                        "(default: the one stored with the run or bundle)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "trt", "openvino"),
                   help="feature extraction backend when RUN is a bundle folder (default auto)")
    backend_options.add_arguments(p, device=False)


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.evaluation.figures import FIGURES, figures_table
    from fashionsearchnet.evaluation.protocol import (COMPOSE_PROTOCOLS, EXTRA_PROTOCOLS, PROTOCOLS, markdown_table,
                                                      missing)
    from fashionsearchnet.evaluation.bundle import evaluate_bundle, is_bundle

    protocols = tuple(x.strip() for x in args.protocols.split(",") if x.strip()) if args.protocols else None
    valid = PROTOCOLS + EXTRA_PROTOCOLS + FIGURES + COMPOSE_PROTOCOLS
    bad = [x for x in protocols or () if x not in valid]
    if bad:
        raise UsageError(f"--protocols: unknown {', '.join(bad)}; valid: {', '.join(valid)}")
    methods = None
    if args.methods and not is_bundle(args.run):
        from fashionsearchnet.training.model import canonical_method

        methods = list(dict.fromkeys(canonical_method(m.strip()) for m in args.methods.split(",") if m.strip()))
    dataset = load_dataset(args.data)
    for proto in protocols or ():  # before any feature is extracted: what the data cannot support, asked for
        why = missing(dataset, proto)
        if why is not None and proto != "item":
            raise UsageError(f"--protocols {proto}: {why}; leave {proto} out or evaluate on a catalogue that has it")
    if is_bundle(args.run):  # a bundle folder: runtime features + exact search (no torch)
        result = evaluate_bundle(args.run, dataset, protocols, seed=args.seed, max_queries=args.max_queries,
                                 backend=backend_options.backend_choice(args), bars=lambda n, d: bar(n, d, "img"),
                                 region_weight=args.region_weight)
    else:
        from fashionsearchnet.training.evaluate import evaluate_run

        result = evaluate_run(args.run, dataset, protocols, seed=args.seed, max_queries=args.max_queries,
                              methods=methods, device=args.device, bars=lambda n, d: bar(n, d, "img"),
                              region_weight=args.region_weight)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the shape every evaluating command writes: {"<protocol>": {"<method>": {"top1": .., ..., "n": ..}}}
    atomic_write_text(out, json.dumps(result, indent=2))
    log.info("wrote %s (run %s, data %s, seed %d)\n%s\n%s", out, args.run, args.data, args.seed,
             markdown_table(result), figures_table(result))
    return 0
