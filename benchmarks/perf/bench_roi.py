"""ROI step benchmark (``runtime/roi.all_boxes``): p50/p99 per call at batch 1 and per image at batch 32, for the
current code and, in the same process, for a baseline version of ``runtime/roi.py`` taken from git
(``--baseline-ref``, default ad83c23: the version before the batch-1 work). Maps: 5 attribute maps + 3 region
maps of 15x15 (the edge preset), either
smooth CAM-like random maps (Gaussian-blurred noise, a few components each) or, with ``--bundle``, the real
AAMs / region maps of a bundle's backbone on fsn bench's synthetic 256 px images. Both versions' boxes are checked equal.

    nice -n 10 .venv/bin/python -m benchmarks.perf.bench_roi --out benchmarks/perf/results/roi_edge [--bundle BUNDLE]

With ``--bundle``, the ROI stage is also timed inside the pipeline (``FeatureExtractor.extract`` at batch 1 on
ort-cpu, its ``roi`` stage time, what ``fsn bench`` reports as ``roi_ms_p50``), alternating the two versions in
blocks of 50 calls so that load changes hit both alike (``--pipeline-runs``).

Smoke test: ``--runs 200 --cold-runs 50 --pipeline-runs 100``. Writes OUT.json and OUT.md (command, machine, table).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.runtime import roi

from benchmarks._report import command, machine, write_report

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {
    "attributes": [{"name": n, "values": ["a", "b", "c"]} for n in ("category", "collar", "sleeve", "color", "pattern")],
    "regions": {
        "collar": {"from": ["collar"], "attributes": ["color"]},
        "sleeve": {"from": ["sleeve"], "attributes": ["color", "pattern"]},
        "torso": {"from": ["category", "color", "pattern"], "attributes": ["color", "pattern"],
                  "subtract": ["collar", "sleeve"], "primary": True},
    },
}


def smooth_maps(rng: np.random.Generator, n: int, k: int, size: int) -> np.ndarray:
    """(n, k, size, size) float32 CAM-like maps: blurred noise with a mean offset (a few blobs per map)."""
    x = rng.normal(size=(n * k, size, size)).astype(np.float32)
    out = np.stack([cv2.GaussianBlur(m, (0, 0), 1.5) for m in x]) + 0.05
    return out.reshape(n, k, size, size)


def bundle_maps(bundle: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Schema]:
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    from fashionsearchnet.runtime.bench import synthetic_images

    imgs = synthetic_images(n, seed=seed)  # fsn bench's inputs (smooth blobs)
    with FeatureExtractor(bundle, backend="ort-cpu") as fx:
        f = fx.extract(imgs)
        return f.aams, f.region_maps, fx.schema


def load_baseline(ref: str):
    """runtime/roi.py at git ``ref`` as a module."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:runtime/roi.py"], check=True,
                         capture_output=True, text=True).stdout
    tmp = Path(tempfile.mkdtemp(prefix="roi-baseline-")) / "roi_baseline.py"
    tmp.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("roi_baseline", tmp)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def other_work(ms: float, buf: np.ndarray) -> None:
    """About ``ms`` of unrelated numpy work (what the backbone does between two ROI calls in the pipeline)."""
    t0 = time.perf_counter()
    while (time.perf_counter() - t0) * 1e3 < ms:
        np.sin(buf, out=buf)  # single-threaded (BLAS threads would spin into the timed call)


def time_calls(fn, args_list, runs: int, gap_ms: float = 0.0) -> np.ndarray:
    """Per-call seconds over ``runs`` calls cycling through ``args_list`` (after 50 warm-up calls), with
    ``gap_ms`` of other work before each call (0: back-to-back calls, hot caches)."""
    buf = np.ones((1 << 20,), np.float32)  # 4 MB: evicts the ROI step from the caches like a backbone run
    for i in range(50):
        fn(*args_list[i % len(args_list)])
    ts = np.empty(runs)
    for i in range(runs):
        a = args_list[i % len(args_list)]
        if gap_ms:
            other_work(gap_ms, buf)
        t0 = time.perf_counter()
        fn(*a)
        ts[i] = time.perf_counter() - t0
    return ts


def pipeline_roi(bundle: str, impls: dict, runs: int, seed: int) -> dict[str, float]:
    """p50 of the extractor's ``roi`` stage (ms) at batch 1 for each implementation, interleaved in blocks."""
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    from fashionsearchnet.runtime.bench import synthetic_images

    imgs = synthetic_images(16, seed=seed)  # fsn bench's inputs (smooth blobs)
    times: dict[str, list[float]] = {name: [] for name in impls}
    original = roi.all_boxes
    try:
        with FeatureExtractor(bundle, backend="ort-cpu") as fx:
            for i in range(20):
                fx.extract(imgs[i % 16])
            for block in range(max(runs // 50, 1)):
                for name, fn in impls.items():
                    roi.all_boxes = fn  # the extractor calls roi.all_boxes at run time
                    for i in range(50):
                        fx.extract(imgs[(block + i) % 16])
                        times[name].append(fx.last_timings["roi"])
    finally:
        roi.all_boxes = original
    return {name: float(np.percentile(t, 50)) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output path without suffix (OUT.json, OUT.md)")
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--baseline-ref", default="ad83c23",
                    help="git ref of the baseline runtime/roi.py (default ad83c23, before the batch-1 work)")
    ap.add_argument("--bundle", default=None, help="take real maps from this bundle's backbone (random images)")
    ap.add_argument("--size", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gap-ms", type=float, default=5.0,
                    help="other work before each 'cold' batch-1 call, like the backbone in the pipeline (default 5)")
    ap.add_argument("--cold-runs", type=int, default=500)
    ap.add_argument("--pipeline-runs", type=int, default=1000, help="with --bundle: extractor calls per version")
    a = ap.parse_args(argv)
    n = 64
    if a.bundle:
        aams, rmaps, schema = bundle_maps(a.bundle, n, a.seed)
        source = f"bundle {a.bundle} on fsn bench's synthetic 256 px images (smooth blobs)"
    else:
        schema = Schema.from_dict(SCHEMA)
        rng = np.random.default_rng(a.seed)
        aams, rmaps = smooth_maps(rng, n, 5, a.size), smooth_maps(rng, n, 3, a.size)
        source = f"smooth random maps (Gaussian-blurred noise), {a.size}x{a.size}"
    base = load_baseline(a.baseline_ref)
    plan = roi.subtract_plan(schema)
    bname = f"baseline ({a.baseline_ref})"
    # as the extractor calls them: the current version with the subtraction plan made once
    impls = {bname: base.all_boxes,
             "current": lambda am, rm, sc, th=roi.DEFAULT_THRESH: roi.all_boxes(am, rm, sc, th, plan)}
    in_pipeline = {bname: lambda am, rm, sc, th=roi.DEFAULT_THRESH, *_: base.all_boxes(am, rm, sc, th),
                   "current": roi.all_boxes}
    for i in range(0, n, 32):
        np.testing.assert_array_equal(roi.all_boxes(aams[i:i + 32], rmaps[i:i + 32], schema),
                                      base.all_boxes(aams[i:i + 32], rmaps[i:i + 32], schema))
    one = [(aams[i:i + 1], rmaps[i:i + 1], schema) for i in range(n)]
    b32 = [(aams[:32], rmaps[:32], schema), (aams[32:], rmaps[32:], schema)]
    res = {}
    for name, fn in impls.items():
        t1 = time_calls(fn, one, a.runs) * 1e3
        t32 = time_calls(fn, b32, max(a.runs // 32, 20)) * 1e3 / 32
        cold = time_calls(fn, one, a.cold_runs, a.gap_ms) * 1e3
        res[name] = {"batch1_ms_p50": float(np.percentile(t1, 50)), "batch1_ms_p99": float(np.percentile(t1, 99)),
                     "batch1_cold_ms_p50": float(np.percentile(cold, 50)),
                     "batch1_cold_ms_p99": float(np.percentile(cold, 99)),
                     "batch32_ms_per_image_p50": float(np.percentile(t32, 50))}
    if a.bundle:
        for name, ms in pipeline_roi(a.bundle, in_pipeline, a.pipeline_runs, a.seed).items():
            res[name]["pipeline_roi_ms_p50"] = ms
    cmd, mach = command(), machine(f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), numpy {np.__version__}")
    out = {"command": cmd, "machine": mach, "maps": source, "runs": a.runs, "results": res}
    lines = ["# ROI step (runtime/roi.all_boxes), 5 attribute + 3 region maps", "", f"Command: `{cmd}`", "",
             f"Machine: {mach}", "", f"Maps: {source}; {a.runs} timed batch-1 calls after 50 warm-up; "
             "both versions give identical boxes (checked).", "",
             f"Cold: {a.cold_runs} batch-1 calls each after {a.gap_ms:g} ms of other numpy work (as between "
             "backbone and heads in the pipeline: caches and branch predictors hold other code).", "",
             "| version | batch-1 p50 ms | batch-1 p99 ms | cold batch-1 p50 ms | cold p99 ms | batch-32 p50 ms/image |",
             "|---|---|---|---|---|---|"]
    if a.bundle:
        lines[-2] += " pipeline roi p50 ms |"
        lines[-1] += "---|"
    for name, r in res.items():
        lines.append(f"| {name} | {r['batch1_ms_p50']:.4f} | {r['batch1_ms_p99']:.4f} | "
                     f"{r['batch1_cold_ms_p50']:.4f} | {r['batch1_cold_ms_p99']:.4f} | "
                     f"{r['batch32_ms_per_image_p50']:.4f} |"
                     + (f" {r['pipeline_roi_ms_p50']:.4f} |" if "pipeline_roi_ms_p50" in r else ""))
    if a.bundle:
        lines += ["", f"Pipeline: the extractor's roi stage at batch 1 (ort-cpu, {a.pipeline_runs} calls per version, "
                  "interleaved in blocks of 50), what `fsn bench` reports as roi_ms_p50."]
    write_report(a.out, out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
