"""Timing harness for feature extraction (torch-free; ``fsn bench`` and benchmarks/perf/bench_runtime.py use it).

An extractor is anything with ``extract(images, batch_size) -> Features``, ``last_timings`` (ms per stage:
preprocess, backbone, roi, heads, global) and ``backend_name``. Batch-1 end-to-end latency: ``runs`` timed
calls after ``warmup`` untimed ones; throughput: best images/s over batch sizes 16/32/64 (a few repeats each).
"""
from __future__ import annotations

import os
import platform
import resource
import time
from typing import Any, Callable, Sequence

import numpy as np

from fashionsearchnet.runtime.extractor import STAGES

THROUGHPUT_BATCHES = (16, 32, 64)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict[str, Any]:
    """CPU model, logical cores, platform (for the benchmark table)."""
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def synthetic_images(n: int, size: tuple[int, int] = (256, 256), seed: int = 0) -> list[np.ndarray]:
    """n uint8 RGB images (smooth random blobs, so the AAMs have structure) of ``size`` (h, w)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
        out.append(cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC))
    return out


def bench_extractor(fx, images: Sequence[np.ndarray], runs: int = 200, warmup: int = 20,
                    batches: Sequence[int] = THROUGHPUT_BATCHES, throughput_repeats: int = 3,
                    progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Measure one extractor; returns the flat result dict of one backend for the bench JSON."""
    n = len(images)
    for i in range(warmup):
        fx.extract([images[i % n]], batch_size=1)
    totals = np.empty(runs)
    stages = {k: np.empty(runs) for k in STAGES}
    for r in range(runs):
        img = images[r % n]
        t0 = time.perf_counter()
        fx.extract([img], batch_size=1)
        totals[r] = (time.perf_counter() - t0) * 1e3
        for k in STAGES:
            stages[k][r] = fx.last_timings.get(k, 0.0)
        if progress:
            progress(1)
    ips = {}
    roi_per_image = []
    for b in batches:
        batch = [images[i % n] for i in range(b)]
        fx.extract(batch, batch_size=b)  # warm the shapes
        best = np.inf
        for _ in range(throughput_repeats):
            t0 = time.perf_counter()
            fx.extract(batch, batch_size=b)
            best = min(best, time.perf_counter() - t0)
            roi_per_image.append(fx.last_timings.get("roi", 0.0) / b)
        ips[str(b)] = b / best
    p50 = {k: float(np.percentile(v, 50)) for k, v in stages.items()}
    out: dict[str, Any] = {
        "batch1_total_ms_p50": float(np.percentile(totals, 50)),
        "batch1_total_ms_p99": float(np.percentile(totals, 99)),
        "batch1_total_ms_mean": float(totals.mean()),
        "stages_ms_p50": p50,
        **{f"{k}_ms_p50": v for k, v in p50.items()},
        "roi_ms_per_image_batched": float(np.median(roi_per_image)) if roi_per_image else None,
        "throughput_ips": float(max(ips.values())) if ips else None,
        "throughput_ips_by_batch": ips,
        "runs": runs,
        "warmup": warmup,
        "peak_rss_mb": peak_rss_mb(),
    }
    return out
