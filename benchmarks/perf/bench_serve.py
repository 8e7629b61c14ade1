"""Where the time of one ``POST /search`` goes, in process (no HTTP): decode, model stages, gallery search.

    .venv/bin/python -m benchmarks.perf.bench_serve GALLERY [--n 200] [--out benchmarks/perf/results/bench_serve]

Runs the service's own code path (``app/server.py`` decode + ``GalleryService.search``) on a 640x480 JPEG
made from a gallery image and on gallery item queries with a manipulation; reports p50/p99 per stage.
Compare with ``load_serve.py`` (over HTTP) to see the HTTP + multipart overhead. Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from benchmarks._report import command, write_report
from benchmarks.perf.load_serve import machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gallery")
    ap.add_argument("--n", type=int, default=200, help="repetitions per measurement (default 200)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default 0 = all cores)")
    ap.add_argument("--out", default="benchmarks/perf/results/bench_serve")
    args = ap.parse_args(argv)

    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.app.server import Limits, _decode

    be = GalleryService(args.gallery, backend="ort", threads=args.threads)
    t0 = time.perf_counter()
    be.load()
    load_s = time.perf_counter() - t0
    g = be.gallery
    first = g.records[0]
    img = cv2.resize(cv2.imread(first["path"]), (640, 480), interpolation=cv2.INTER_CUBIC)
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    limits = Limits()
    attr = g.schema.attributes[-1]
    sets = [f"{attr.name}={attr.values[0]}"]
    stages: dict[str, list[float]] = {}

    def add(k: str, v: float) -> None:
        stages.setdefault(k, []).append(v)

    for i in range(args.n + 5):
        t0 = time.perf_counter()
        rgb = _decode(jpeg, limits)
        t1 = time.perf_counter()
        ans = be.search(rgb, sets, [], 12)
        t2 = time.perf_counter()
        if i < 5:
            continue
        add("upload: decode 640x480 JPEG", (t1 - t0) * 1e3)
        for k, v in be.fx.last_timings.items():
            add(f"upload: model {k}", v)
        add("upload: extract + search (backend total)", (t2 - t1) * 1e3)
        add("upload: total", (t2 - t0) * 1e3)
    ids = [r["id"] for r in g.records[: min(len(g.records), 100)]]
    for i in range(args.n):
        t0 = time.perf_counter()
        be.search(ids[i % len(ids)], sets, [], 12)
        add("item query + manipulation (cached item info)", (time.perf_counter() - t0) * 1e3)
    rows = {k: {"p50_ms": round(float(np.percentile(v, 50)), 3), "p99_ms": round(float(np.percentile(v, 99)), 3)}
            for k, v in stages.items()}
    res = {"command": command(), "machine": machine(),
           "gallery_items": len(g), "method": g.method, "backend": be.fx.backend_name, "load_and_warmup_s": round(load_s, 2),
           "n": args.n, "stages": rows, "answer_results": len(ans.results)}
    m = res["machine"]
    md = ["# POST /search in process: time per stage", "", f"Command: `{res['command']}`", "",
          f"Machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}; gallery {len(g)} items, "
          f"method {g.method}, backend {res['backend']}, load + warm-up {res['load_and_warmup_s']} s", "",
          "| stage | p50 ms | p99 ms |", "|---|---|---|"]
    md += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in rows.items()]
    write_report(args.out, res, md)
    be.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
