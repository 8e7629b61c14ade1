"""What the region heads cost at run time: batch-1 extraction through ONNX Runtime (CPU) of bundles that differ only
in their region heads, interleaved call by call so machine noise hits every bundle alike.

Any number of labelled bundles (e.g. none / crop / attention heads of the same run)::

    .venv/bin/python -m benchmarks.perf.bench_region_heads --bundle crop=RUN_A/bundle --bundle attention=RUN_B/bundle \\
        --out benchmarks/perf/results/region_heads

Reports per bundle the median and p99 of the end-to-end call and of the ``backbone`` / ``heads`` stages (ms), the
ratio of each median to the first bundle's, the heads graph's size and the packed ``conv5`` tensor's channels;
``--repeats`` rounds of ``--runs`` calls each (spread = the rounds' medians, min to max). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks._report import command, machine, write_report
from fashionsearchnet.runtime.bench import synthetic_images
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.runtime.extractor import FeatureExtractor

STAGES = ("backbone", "heads")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--out", required=True, help="output path without suffix (writes OUT.json and OUT.md)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    labelled = [item.split("=", 1) for item in args.bundle]
    if any(len(x) != 2 for x in labelled):
        ap.error("--bundle takes LABEL=PATH")
    images = synthetic_images(16, (128, 128))
    extractors = {label: FeatureExtractor(path, backend="ort-cpu", threads=args.threads) for label, path in labelled}
    times: dict[str, dict[str, list[list[float]]]] = {k: {s: [] for s in ("total",) + STAGES} for k in extractors}
    try:
        for fx in extractors.values():
            for i in range(args.warmup):
                fx.extract([images[i % len(images)]], batch_size=1)
        for _ in range(args.repeats):
            rnd = {k: {s: [] for s in ("total",) + STAGES} for k in extractors}
            for i in range(args.runs):
                for label, fx in extractors.items():  # interleaved: one call of each bundle in turn
                    t0 = time.perf_counter()
                    fx.extract([images[i % len(images)]], batch_size=1)
                    rnd[label]["total"].append((time.perf_counter() - t0) * 1e3)
                    for s in STAGES:
                        rnd[label][s].append(fx.last_timings[s])
            for label in extractors:
                for s, v in rnd[label].items():
                    times[label][s].append(v)
    finally:
        for fx in extractors.values():
            fx.close()
    first = labelled[0][0]
    result: dict = {"command": command(), "machine": machine(), "runs": args.runs, "repeats": args.repeats,
                    "threads": args.threads, "bundles": {}}
    for label, path in labelled:
        b = Bundle.open(path)
        row = {"path": str(path), "region_head": b.manifest.get("run", {}).get("region_head"),
               "conv5_channels": int(b.manifest["shapes"]["conv5"][0]),
               "heads_mb": round(b.graph_path("heads").stat().st_size / 2**20, 2)}
        for s, rounds in times[label].items():
            all_ms = np.concatenate(rounds)
            meds = [float(np.median(r)) for r in rounds]
            row[s] = {"median_ms": round(float(np.median(all_ms)), 3), "p99_ms": round(float(np.percentile(all_ms, 99)), 3),
                      "round_medians_ms": [round(m, 3) for m in meds]}
        result["bundles"][label] = row
    base = result["bundles"][first]["total"]["median_ms"]
    md = ["# Region heads at run time (ONNX Runtime CPU, batch 1, interleaved)", "",
          f"Command: `{command()}`", "", f"Machine: {machine()}; {args.threads} thread(s); {args.repeats} rounds of "
          f"{args.runs} calls per bundle after {args.warmup} warm-up calls", "",
          "| bundle | conv5 tensor channels | heads.onnx MB | total median (round min–max) | p99 | backbone median | "
          f"heads median | total / {first} |", "|---|---|---|---|---|---|---|---|"]
    for label, row in result["bundles"].items():
        t = row["total"]
        row["ratio_to_first"] = round(t["median_ms"] / base, 3)
        md.append(f"| {label} | {row['conv5_channels']} | {row['heads_mb']} | {t['median_ms']:.2f} ms "
                  f"({min(t['round_medians_ms']):.2f}–{max(t['round_medians_ms']):.2f}) | {t['p99_ms']:.2f} | "
                  f"{row['backbone']['median_ms']:.2f} | {row['heads']['median_ms']:.2f} | {row['ratio_to_first']:.2f} |")
    write_report(Path(args.out), result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
