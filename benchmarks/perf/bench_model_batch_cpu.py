"""CPU time per image of the service's model step (backbone, ROI step, heads) at batch 1 vs larger batches.

    .venv/bin/python -m benchmarks.perf.bench_model_batch_cpu GALLERY [--bundle B] [--threads 0] [--batches 1,2,4,8]
        [--rounds 5] [--n 64] [--out benchmarks/perf/results/model_batch_cpu]

Wall-clock throughput is not measurable on a machine whose cores other jobs take; the process's CPU time per
image is (a starved process spends about the same CPU per image, it just waits longer for it). Runs the
service's own code (``GalleryService.prepare`` once, ``extract_batch`` on batches of the same 640x480 photo),
batch sizes interleaved, ``--rounds`` rounds of ``--n`` images each; reports the median and range of process
CPU ms per image and wall ms per image, and each batch size's CPU ratio to batch 1.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import cv2
import numpy as np

from benchmarks._report import command, write_report
from benchmarks.perf.load_serve import machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gallery")
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default 0 = fsn serve's default)")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=64, help="images per measurement")
    ap.add_argument("--out", default="benchmarks/perf/results/model_batch_cpu")
    args = ap.parse_args(argv)

    from fashionsearchnet.app.gallery_service import GalleryService

    started = machine()  # load average at the start

    be = GalleryService(args.gallery, bundle=args.bundle, backend="ort", threads=args.threads)
    be.load()
    img = cv2.resize(cv2.imread(be.gallery.records[0]["path"]), (640, 480), interpolation=cv2.INTER_CUBIC)
    p = be.prepare(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    sizes = [int(b) for b in args.batches.split(",")]
    cpu: dict[int, list[float]] = {b: [] for b in sizes}
    wall: dict[int, list[float]] = {b: [] for b in sizes}
    for b in sizes:  # warm-up per shape
        be.extract_batch([p] * b)
    for r in range(args.rounds):
        for b in (sizes if r % 2 == 0 else sizes[::-1]):
            reps = max(1, args.n // b)
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(reps):
                be.extract_batch([p] * b)
            cpu[b].append((time.process_time() - c0) * 1e3 / (reps * b))
            wall[b].append((time.perf_counter() - t0) * 1e3 / (reps * b))
    be.close()
    med = lambda xs: statistics.median(xs)  # noqa: E731
    rows = {b: {"cpu_ms_per_image": {"median": med(cpu[b]), "min": min(cpu[b]), "max": max(cpu[b])},
                "wall_ms_per_image": {"median": med(wall[b]), "min": min(wall[b]), "max": max(wall[b])},
                "cpu_ratio_to_batch_1": med(cpu[b]) / med(cpu[sizes[0]])} for b in sizes}
    res = {"command": command(), "machine": started, "threads": args.threads, "rounds": args.rounds, "n": args.n,
           "load_avg_end": os.getloadavg(), "nice": os.getpriority(os.PRIO_PROCESS, 0), "batches": rows}
    m = res["machine"]
    md = [f"# Model step CPU per image vs batch size ({args.threads or 'all'} ORT threads)", "",
          f"Command: `{res['command']}`", "",
          f"Machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}; load average at the start "
          f"{', '.join(f'{x:.1f}' for x in m['load_avg_at_start'])}, at the end "
          f"{', '.join(f'{x:.1f}' for x in res['load_avg_end'])}; this process ran at nice {res['nice']}.", "",
          f"{args.rounds} rounds x {args.n} images per batch size, interleaved; median [min-max].", "",
          "| batch | process CPU ms / image | wall ms / image | CPU vs batch 1 |", "|---|---|---|---|"]
    for b, r in rows.items():
        c, w = r["cpu_ms_per_image"], r["wall_ms_per_image"]
        md.append(f"| {b} | {c['median']:.2f} [{c['min']:.2f}-{c['max']:.2f}] | {w['median']:.2f} "
                  f"[{w['min']:.2f}-{w['max']:.2f}] | {r['cpu_ratio_to_batch_1']:.2f}x |")
    write_report(args.out, res, md + [""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
