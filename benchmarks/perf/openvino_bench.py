"""OpenVINO vs ONNX Runtime vs PyTorch eager, interleaved in one process (issue 23's targets): batch-1 end to
end (preprocess -> global) and per stage, and throughput at batch 16/32/64, at equal threads.

On a shared machine a backend measured minutes after another meets another load, so the backends take turns:
each round runs a block of batch-1 calls on every backend in turn, then one timed batch per throughput size on
every backend in turn; rounds repeat. Reported: medians, p99 and the spread (p10-p90 of calls; min-max of the
round medians), and each backend's ratio to ort-cpu measured in the same rounds.

    nice .venv/bin/python -m benchmarks.perf.openvino_bench --bundle B32 --int8-bundle B8 --threads 2 \\
        --out benchmarks/perf/results/openvino_bench
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._report import command, machine, write_report

TARGET_BATCH1_MS = 1.8
TARGET_IPS = 1500.0


def extractors(bundle: str, int8: str | None, threads: int, checkpoint: str | None) -> dict:
    from fashionsearchnet.runtime.backends import BackendChoice
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    fx = {"ort-cpu": FeatureExtractor(bundle, backend="ort-cpu", threads=threads),
          "openvino-cpu": FeatureExtractor(bundle, backend=BackendChoice("openvino", "CPU", "fp32"), threads=threads),
          "openvino-cpu-bf16": FeatureExtractor(bundle, backend=BackendChoice("openvino", "CPU", "bf16"),
                                                threads=threads)}
    if int8:
        fx["ort-cpu int8"] = FeatureExtractor(int8, backend="ort-cpu", threads=threads)
        fx["openvino-cpu int8"] = FeatureExtractor(int8, backend=BackendChoice("openvino", "CPU"), threads=threads)
    if checkpoint:
        from fashionsearchnet.export.torch_reference import TorchExtractor

        fx["torch-eager"] = TorchExtractor(checkpoint, "cpu", threads)
    return fx


def summarise(x: list[float]) -> dict[str, float]:
    a = np.asarray(x)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)), "n": int(a.size)}


def main(argv: list[str] | None = None) -> int:  # noqa: C901
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True, help="fp32 bundle")
    ap.add_argument("--int8-bundle", default=None, help="int8 bundle of the same run (adds the int8 rows)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint for torch-eager (default: the bundle's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="leave out the torch-eager row")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--block", type=int, default=20, help="batch-1 calls per backend per round")
    ap.add_argument("--batches", default="16,32,64")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    import json

    from fashionsearchnet.runtime.bench import synthetic_images
    from fashionsearchnet.runtime.extractor import STAGES

    cmd = command()
    ck = a.checkpoint or json.loads((Path(a.bundle) / "manifest.json").read_text()).get("run", {}).get("checkpoint")
    fxs = extractors(a.bundle, a.int8_bundle, a.threads, ck if ck and Path(ck).is_file() and not a.no_torch else None)
    imgs = synthetic_images(64, (256, 256))
    batches = [int(b) for b in a.batches.split(",")]
    calls = {k: [] for k in fxs}
    stages = {k: {s: [] for s in STAGES} for k in fxs}
    round_p50 = {k: [] for k in fxs}
    ips = {k: {b: [] for b in batches} for k in fxs}
    for fx in fxs.values():  # warm-up: compile caches, allocator, every batch shape
        for i in range(10):
            fx.extract([imgs[i]], batch_size=1)
        for b in batches:
            fx.extract(imgs[:b], batch_size=b)
    t0 = time.monotonic()
    for r in range(a.rounds):
        for k, fx in fxs.items():
            this = []
            for i in range(a.block):
                img = imgs[(r * a.block + i) % len(imgs)]
                t = time.perf_counter()
                fx.extract([img], batch_size=1)
                this.append((time.perf_counter() - t) * 1e3)
                for s in STAGES:
                    stages[k][s].append(fx.last_timings.get(s, 0.0))
            calls[k] += this
            round_p50[k].append(float(np.median(this)))
        for b in batches:
            for k, fx in fxs.items():
                t = time.perf_counter()
                fx.extract(imgs[:b], batch_size=b)
                ips[k][b].append(b / (time.perf_counter() - t))
    wall = time.monotonic() - t0
    res = {}
    for k in fxs:
        by_b = {str(b): summarise(v) for b, v in ips[k].items()}
        best = max(by_b, key=lambda b: by_b[b]["p50"])
        res[k] = {"batch1_ms": summarise(calls[k]), "round_p50_ms_min_max": [min(round_p50[k]), max(round_p50[k])],
                  "stages_ms_p50": {s: float(np.median(v)) for s, v in stages[k].items()},
                  "throughput_ips_by_batch": by_b, "throughput_ips_best_p50": by_b[best]["p50"],
                  "throughput_best_batch": int(best)}
    ref = res["ort-cpu"]
    for k, r in res.items():
        r["batch1_speedup_vs_ort_cpu"] = ref["batch1_ms"]["p50"] / r["batch1_ms"]["p50"]
        r["throughput_ratio_vs_ort_cpu"] = r["throughput_ips_best_p50"] / ref["throughput_ips_best_p50"]
        # the same ratio per round (same minute of load), to show its spread
        per_round = [o / s for o, s in zip(round_p50["ort-cpu"], round_p50[k])]
        r["batch1_speedup_per_round_min_max"] = [min(per_round), max(per_round)]
    for fx in fxs.values():
        if hasattr(fx, "close"):
            fx.close()
    import onnxruntime
    import openvino

    from fashionsearchnet.runtime.bench import machine as cpu

    mach = machine(f"{cpu()['cpu']}, onnxruntime {onnxruntime.__version__}, "
                   f"openvino {openvino.get_version().split('-')[0]}")
    out = {"command": cmd, "machine": mach, "threads": a.threads, "rounds": a.rounds, "block": a.block,
           "targets": {"batch1_ms": TARGET_BATCH1_MS, "throughput_ips": TARGET_IPS}, "results": res,
           "wall_s": round(wall, 1)}
    lines = [f"# OpenVINO vs ONNX Runtime vs PyTorch eager, interleaved ({a.threads} threads each)", "",
             f"Command: `{cmd}`", "", f"Machine: {mach}. **Shared** with other agents' jobs during the run "
             "(1-min load above the 2 cores): absolute times are inflated and noisy; the ratios to ort-cpu, measured "
             "in the same rounds, are the figures to read.", "",
             f"Bundle `{a.bundle}`" + (f", int8 bundle `{a.int8_bundle}`" if a.int8_bundle else "") +
             f"; synthetic 256 px RGB arrays (decode excluded, resize included); {a.rounds} rounds x {a.block} "
             "batch-1 calls per backend, backends in turn; throughput: one timed batch per size per round.", "",
             "| backend | batch-1 p50 ms | p99 | p10-p90 | round p50 min-max | x ort-cpu (per round min-max) | "
             "preprocess | backbone | roi | heads | global | img/s (best batch p50) | x ort-cpu |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in res.items():
        b1, s = r["batch1_ms"], r["stages_ms_p50"]
        lo, hi = r["round_p50_ms_min_max"]
        rl, rh = r["batch1_speedup_per_round_min_max"]
        lines.append(f"| {k} | {b1['p50']:.2f} | {b1['p99']:.2f} | {b1['p10']:.2f}-{b1['p90']:.2f} | {lo:.2f}-{hi:.2f} | "
                     f"{r['batch1_speedup_vs_ort_cpu']:.2f}x ({rl:.2f}-{rh:.2f}) | {s['preprocess']:.2f} | "
                     f"{s['backbone']:.2f} | {s['roi']:.3f} | {s['heads']:.2f} | {s['global']:.3f} | "
                     f"{r['throughput_ips_best_p50']:.0f} (b{r['throughput_best_batch']}) | "
                     f"{r['throughput_ratio_vs_ort_cpu']:.2f}x |")
    lines += ["", f"Targets (issue 23, on an idle machine): batch-1 end to end <= {TARGET_BATCH1_MS} ms with bf16 or int8; "
              f"throughput >= {TARGET_IPS:.0f} img/s at batch 16-64."]
    for k, r in res.items():
        if k.startswith("openvino") and ("bf16" in k or "int8" in k):
            lines.append(f"- {k}: batch-1 p50 {r['batch1_ms']['p50']:.2f} ms "
                         f"({'meets' if r['batch1_ms']['p50'] <= TARGET_BATCH1_MS else 'misses'} {TARGET_BATCH1_MS} ms), "
                         f"{r['throughput_ips_best_p50']:.0f} img/s "
                         f"({'meets' if r['throughput_ips_best_p50'] >= TARGET_IPS else 'misses'} {TARGET_IPS:.0f}) here.")
    write_report(a.out, out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
