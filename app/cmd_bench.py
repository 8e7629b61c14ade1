"""``fsn bench BUNDLE --json OUT [--runs 200] [--backends ...]``: batch-1 latency (p50/p99, per stage),
throughput (best of batch 16/32/64) and peak RSS per available backend, plus the PyTorch eager reference in
the same run; writes OUT (JSON ``{"<backend>": {...}}``) and OUT with a ``.md`` suffix (table, command, machine)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shlex
from pathlib import Path

log = logging.getLogger(__name__)

ALL = ("ort-cpu", "ort-cuda", "trt", "torch-eager", "torch-cuda", "openvino-cpu", "openvino-cpu-bf16", "openvino-gpu",
       "openvino-npu")


def openvino_row(kind: str):
    """``openvino-<device>[-bf16]`` -> BackendChoice (the OpenVINO rows of the table)."""
    from fashionsearchnet.runtime.backends import BackendChoice

    parts = kind.split("-")
    return BackendChoice("openvino", parts[1].upper(), parts[2] if len(parts) > 2 else "fp32")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--json", required=True, metavar="OUT", help="result JSON path (a .md table is written beside it)")
    p.add_argument("--runs", type=int, default=200, help="timed batch-1 runs per backend after warm-up (default 200)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--backends", default=",".join(ALL),
                   help=f"comma-separated subset of {', '.join(ALL)}; unavailable ones are skipped with the reason")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads for every backend alike, torch included (default: the runtime's default, "
                        "1; 0 = one per core); recorded as \"threads\" in each backend's JSON")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint for the torch rows (default: the one recorded in the bundle manifest)")
    p.add_argument("--image-size", type=int, default=256, help="side of the synthetic input images (resized inside)")
    p.add_argument("--batches", default="16,32,64", help="throughput batch sizes (default 16,32,64)")
    p.add_argument("--max-batch", type=int, default=None,
                   help="trt: engines' max batch (default: what fsn engines built, else 64)")
    p.add_argument("--opt-batch", type=int, default=None,
                   help="trt: batch the engines' profile is tuned for, e.g. 32 for a throughput run (default: what "
                        "fsn engines built, else 1); a configuration not built yet is built first")


def _extractor(kind: str, bundle, args):
    """(extractor, None) or (None, reason skipped)."""
    from fashionsearchnet.errors import FSNError

    if kind.startswith("torch"):
        if importlib.util.find_spec("torch") is None:
            return None, "torch is not installed"
        ck = args.checkpoint or bundle.manifest.get("run", {}).get("checkpoint")
        if not ck or not Path(ck).is_file():
            return None, f"checkpoint {ck!r} not found; pass --checkpoint"
        import torch

        if kind == "torch-cuda" and not torch.cuda.is_available():
            return None, "no CUDA device for torch"
        from fashionsearchnet.export.torch_reference import TorchExtractor

        return TorchExtractor(ck, "cuda" if kind == "torch-cuda" else "cpu", args.threads), None
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    try:
        backend = openvino_row(kind) if kind.startswith("openvino") else kind
        return FeatureExtractor(bundle, backend=backend, threads=args.threads,
                                max_batch=getattr(args, "max_batch", None),
                                opt_batch=getattr(args, "opt_batch", None)), None
    except FSNError as e:
        return None, str(e)


def _openvino_version() -> str:
    """", openvino <version>" where the package is installed (for the table's machine line), else ""."""
    if importlib.util.find_spec("openvino") is None:
        return ""
    import openvino

    return f", openvino {openvino.get_version().split('-')[0]}"


def command_line(args: argparse.Namespace) -> str:
    """The equivalent ``fsn bench`` command (rebuilt from the parsed arguments)."""
    parts = ["fsn", "bench", args.bundle, "--json", args.json, "--runs", str(args.runs), "--warmup", str(args.warmup),
             "--backends", args.backends, "--batches", args.batches, "--image-size", str(args.image_size)]
    if args.threads is not None:
        parts += ["--threads", str(args.threads)]
    if args.checkpoint:
        parts += ["--checkpoint", args.checkpoint]
    for flag in ("max_batch", "opt_batch"):
        if getattr(args, flag, None) is not None:
            parts += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    return " ".join(shlex.quote(str(p)) for p in parts)


def markdown(results: dict, skipped: dict, meta: dict) -> str:
    """The benchmark table with the command and machine."""
    lines = [f"# fsn bench: {meta['bundle']}", "",
             f"Command: `{meta['command']}`", "",
             f"Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} logical cores, {meta['machine']['platform']}; "
             f"onnxruntime {meta['onnxruntime']}; preset {meta['preset']}, {meta['precision']}, input {meta['input_size']} px; "
             f"{meta['threads']} intra-op thread(s) for every backend; "
             f"{meta['runs']} timed batch-1 runs after {meta['warmup']} warm-up; synthetic {meta['image_size']} px RGB arrays "
             "(decode excluded, resize included).", "",
             "| backend | batch-1 p50 ms | p99 ms | preprocess | backbone | roi | heads | global | throughput img/s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in results.items():
        s = r["stages_ms_p50"]
        lines.append(f"| {k} | {r['batch1_total_ms_p50']:.2f} | {r['batch1_total_ms_p99']:.2f} | {s['preprocess']:.2f} | "
                     f"{s['backbone']:.2f} | {s['roi']:.3f} | {s['heads']:.2f} | {s['global']:.3f} | "
                     f"{r['throughput_ips']:.0f} | {r['peak_rss_mb']:.0f} |")
    if "torch-eager" in results:
        ref = results["torch-eager"]["batch1_total_ms_p50"]
        for k, r in results.items():
            if k != "torch-eager":
                lines.append(f"\n{k} vs torch-eager at batch 1: {ref / r['batch1_total_ms_p50']:.2f}x")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    lines += ["", "Stage columns are p50 ms per batch-1 call. Peak RSS is the process peak so far (backends run in "
              "table order in one process)."]
    return "\n".join(lines) + "\n"


def equal_threads(threads: int | None) -> int:
    """The intra-op thread count every backend runs with: ``--threads`` as given, the runtime's default (1) when
    not given, and 0 (\"all cores\") resolved to this process's core count so torch gets the same number."""
    import os

    from fashionsearchnet.runtime.backends.ort import DEFAULT_THREADS

    if threads is None:
        return DEFAULT_THREADS
    if threads == 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(threads)


def run(args: argparse.Namespace) -> int:
    import onnxruntime

    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.errors import UsageError
    from fashionsearchnet.runtime.backends.ort import check_threads
    from fashionsearchnet.runtime.bench import bench_extractor, machine, synthetic_images
    from fashionsearchnet.runtime.bundle import Bundle

    kinds = [k.strip() for k in args.backends.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ALL]
    if bad or args.runs < 1:
        raise UsageError(f"--backends {','.join(bad)}: valid: {', '.join(ALL)}" if bad else "--runs must be >= 1")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup}: give 0 or more runs")
    check_threads(args.threads)  # here too: the torch rows do not go through ONNX Runtime's check
    if args.max_batch is not None and args.max_batch < 1 or args.opt_batch is not None and (
            args.opt_batch < 1 or args.max_batch is not None and args.opt_batch > args.max_batch):
        raise UsageError(f"--max-batch {args.max_batch} / --opt-batch {args.opt_batch}: need 1 <= opt <= max")
    if args.image_size < 8:
        raise UsageError(f"--image-size {args.image_size}: give at least 8 pixels")
    try:
        batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
    except ValueError:
        batches = ()
    if not batches or min(batches) < 1:
        raise UsageError(f"--batches {args.batches!r}: give comma-separated batch sizes >= 1, like 16,32,64")
    args.threads = equal_threads(args.threads)  # one count for every row: like with like
    bundle = Bundle.open(args.bundle)
    images = synthetic_images(64, (args.image_size, args.image_size))
    results, skipped = {}, {}
    for kind in kinds:
        fx, why = _extractor(kind, bundle, args)
        if fx is None:
            skipped[kind] = why
            log.info("bench: skipping %s: %s", kind, why)
            continue
        with bar(args.runs, f"bench {kind}", "run") as advance:
            results[kind] = bench_extractor(fx, images, args.runs, args.warmup, batches, progress=advance)
        if hasattr(fx, "close"):
            fx.close()
        r = results[kind]
        r["threads"] = args.threads
        log.info("%s: batch-1 p50 %.2f ms, p99 %.2f ms, roi %.3f ms, throughput %.0f img/s", kind,
                 r["batch1_total_ms_p50"], r["batch1_total_ms_p99"], r["roi_ms_p50"], r["throughput_ips"])
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    meta = {"bundle": str(args.bundle), "command": command_line(args),
            "machine": machine(), "onnxruntime": onnxruntime.__version__ + _openvino_version(),
            "preset": bundle.manifest.get("run", {}).get("preset", {}).get("name", "?"),
            "precision": bundle.precision, "input_size": bundle.preprocessing.size, "runs": args.runs,
            "warmup": args.warmup, "image_size": args.image_size, "threads": args.threads}
    out.with_suffix(".md").write_text(markdown(results, skipped, meta), encoding="utf-8")
    log.info("wrote %s and %s", out, out.with_suffix(".md"))
    return 0
