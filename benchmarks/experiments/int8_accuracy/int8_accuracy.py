"""INT8 vs fp32: search accuracy (``fsn eval BUNDLE DATA --protocols manipulation``) and batch-1 latency
(``fsn bench --backends ort-cpu``) of the same run exported both ways. The issue's rule: offer INT8 if it keeps
manipulation Top-30 within 1 point of fp32; both are reported either way.

Full run on an existing run folder and its dataset (the int8 bundle calibrates on DATA's train split)::

    nice -n 10 .venv/bin/python -m benchmarks.experiments.int8_accuracy.int8_accuracy --run /tmp/fsn-tm/run-synth-edge \\
        --data /tmp/fsn-tm/synth-8000-0-128 --out benchmarks/experiments/int8_accuracy/results/edge_basic_8k

Without ``--run`` it trains one (``fsn train DATA --preset edge --method fsn --epochs 3,2,5``); without
``--data`` it writes a synthetic catalogue first (``fsn synth --count 3000``). Smoke test::

    .venv/bin/python -m benchmarks.experiments.int8_accuracy.int8_accuracy --count 240 --size 64 --preset tiny --epochs 1,1,1 \\
        --bench-runs 20 --calibration-images 32 --out /tmp/int8-smoke

Writes OUT.json and OUT.md (command, machine, Top-30 fp32 vs int8 and the difference, latency p50 both).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from fashionsearchnet.app.cli import main as fsn

from benchmarks._report import command, write_report

PROTOCOL = "manipulation"
RULE_POINTS = 1.0  # offer INT8 when manipulation Top-30 drops by at most this many points


def _run(argv: list[str]) -> None:
    rc = fsn(argv)
    if rc:
        raise SystemExit(f"int8_accuracy: `fsn {' '.join(shlex.quote(a) for a in argv)}` failed with exit code {rc}")


def interleaved_latency(bundles: dict[str, Path], runs: int, block: int = 20) -> dict[str, dict[str, float]]:
    """Batch-1 p50 (ms, total and per stage) of each bundle on ort-cpu in one process, alternating blocks of
    ``block`` calls so that the shared machine's load changes hit every bundle alike (``fsn bench`` runs one
    bundle after the other, minutes apart)."""
    import numpy as np

    from fashionsearchnet.runtime.extractor import STAGES, FeatureExtractor

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(16)]
    fxs = {k: FeatureExtractor(b, backend="ort-cpu") for k, b in bundles.items()}
    t: dict[str, dict[str, list[float]]] = {k: {s: [] for s in ("total",) + STAGES} for k in fxs}
    try:
        for k, fx in fxs.items():
            for i in range(20):
                fx.extract(imgs[i % 16])
        for blk in range(max(runs // block, 1)):
            for k, fx in fxs.items():
                for i in range(block):
                    t0 = time.perf_counter()
                    fx.extract(imgs[(blk + i) % 16])
                    t[k]["total"].append((time.perf_counter() - t0) * 1e3)
                    for s in STAGES:
                        t[k][s].append(fx.last_timings[s])
    finally:
        for fx in fxs.values():
            fx.close()
    return {k: {f"{s}_ms_p50": float(np.percentile(v, 50)) for s, v in d.items()} for k, d in t.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output path without suffix (OUT.json, OUT.md)")
    ap.add_argument("--run", default=None, help="existing run folder (default: train one)")
    ap.add_argument("--data", default=None, help="dataset folder the run was trained on (default: synthesise one)")
    ap.add_argument("--count", type=int, default=3000, help="synthetic catalogue size when --data is not given")
    ap.add_argument("--size", type=int, default=128, help="synthetic image side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--epochs", default="3,2,5")
    ap.add_argument("--calibration-images", type=int, default=256)
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--bench-runs", type=int, default=200)
    ap.add_argument("--work", default=None, help="folder for the data, run and bundles (default: a temporary one)")
    a = ap.parse_args(argv)
    cmd = command()
    with tempfile.TemporaryDirectory(prefix="fsn-int8-") as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        data = a.data
        if data is None:
            data = str(work / f"synth-{a.count}-{a.seed}-{a.size}")
            if not (Path(data) / "attributes.csv").is_file():
                _run(["synth", data, "--count", str(a.count), "--seed", str(a.seed), "--size", str(a.size)])
        run = a.run
        if run is None:
            run = str(work / f"run-{a.preset}")
            _run(["train", data, "--out", run, "--preset", a.preset, "--method", "fsn", "--epochs", a.epochs,
                  "--seed", str(a.seed)])
        res: dict[str, dict] = {}
        for prec in ("fp32", "int8"):
            bundle = work / f"bundle-{prec}"
            extra = ["--calibration", data, "--calibration-images", str(a.calibration_images)] if prec == "int8" else []
            t1 = time.monotonic()
            _run(["export", run, "--out", str(bundle), "--precision", prec] + extra)
            export_s = time.monotonic() - t1
            ev = work / f"eval-{prec}.json"
            _run(["eval", str(bundle), data, "--json", str(ev), "--protocols", PROTOCOL, "--backend", "ort",
                  "--seed", str(a.seed)] + (["--max-queries", str(a.max_queries)] if a.max_queries else []))
            bj = work / f"bench-{prec}.json"
            _run(["bench", str(bundle), "--json", str(bj), "--backends", "ort-cpu", "--runs", str(a.bench_runs),
                  "--warmup", "20"])
            manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
            b = json.loads(bj.read_text(encoding="utf-8"))["ort-cpu"]
            res[prec] = {"eval": json.loads(ev.read_text(encoding="utf-8"))[PROTOCOL],
                         "batch1_total_ms_p50": b["batch1_total_ms_p50"], "backbone_ms_p50": b["stages_ms_p50"]["backbone"],
                         "throughput_ips": b["throughput_ips"], "export_s": round(export_s, 1),
                         "parity": manifest["parity"], "quantization": manifest.get("quantization")}
        from fashionsearchnet.runtime.bench import machine

        inter = interleaved_latency({p: work / f"bundle-{p}" for p in ("fp32", "int8")}, a.bench_runs)

        mach = machine()
        methods = [m for m in res["fp32"]["eval"] if m in res["int8"]["eval"]]
        rows, verdict = [], {}
        for m in methods:
            f, i = res["fp32"]["eval"][m], res["int8"]["eval"][m]
            scale = 1.0  # evaluation/protocol.py reports percentages already
            diff = (i["top30"] - f["top30"]) * scale
            verdict[m] = {"top30_fp32": f["top30"] * scale, "top30_int8": i["top30"] * scale, "diff_points": diff,
                          "top1_fp32": f["top1"] * scale, "top1_int8": i["top1"] * scale, "n": f.get("n"),
                          "offer_int8": diff >= -RULE_POINTS}
            rows.append(f"| {m} | {f['top30'] * scale:.2f} | {i['top30'] * scale:.2f} | {diff:+.2f} | "
                        f"{f['top1'] * scale:.2f} | {i['top1'] * scale:.2f} | {f.get('n')} |")
        out = {"command": cmd, "machine": mach, "run": run, "data": data, "protocol": PROTOCOL,
               "rule": f"offer int8 if {PROTOCOL} Top-30 drops by <= {RULE_POINTS} point", "results": verdict,
               "latency": {p: {k: res[p][k] for k in ("batch1_total_ms_p50", "backbone_ms_p50", "throughput_ips")}
                           for p in res},
               "latency_interleaved": inter,
               "details": res, "wall_s": round(time.monotonic() - t0, 1)}
        i8 = res["int8"]
        offer = all(v["offer_int8"] for v in verdict.values()) and bool(verdict)
        cal = (i8["quantization"] or {}).get("calibration", {})
        lines = [f"# INT8 vs fp32 ({PROTOCOL} protocol)", "", f"Command: `{cmd}`", "",
                 f"Machine: {mach['cpu']}, {mach['cores']} logical cores, {mach['platform']} (shared, noisy).", "",
                 f"Run: `{run}`; data: `{data}`; int8: ONNX Runtime static quantisation (QDQ, backbone convs, "
                 f"symmetric int8, per-channel weights), calibrated on {cal.get('images')} of "
                 f"{cal.get('train_images')} training images.", "",
                 "| method | Top-30 fp32 | Top-30 int8 | difference (points) | Top-1 fp32 | Top-1 int8 | queries |",
                 "|---|---|---|---|---|---|---|", *rows, "",
                 "| precision | batch-1 p50 ms, interleaved | backbone p50 ms, interleaved | batch-1 p50 ms, fsn bench | "
                 "backbone p50 ms, fsn bench | throughput img/s, fsn bench | parity worst error |",
                 "|---|---|---|---|---|---|---|"]
        for p in ("fp32", "int8"):
            r, q = res[p], inter[p]
            lines.append(f"| {p} | {q['total_ms_p50']:.2f} | {q['backbone_ms_p50']:.2f} | {r['batch1_total_ms_p50']:.2f} | "
                         f"{r['backbone_ms_p50']:.2f} | {r['throughput_ips']:.0f} | "
                         f"{max(r['parity']['errors'].values()):.1e} (tolerance {r['parity']['tolerance']:g}) |")
        lines += ["", f"Rule ({out['rule']}): **{'offer INT8' if offer else 'do not offer INT8'}**.",
                  f"Latency from `fsn bench BUNDLE --backends ort-cpu --runs {a.bench_runs}`, accuracy from "
                  f"`fsn eval BUNDLE DATA --protocols {PROTOCOL} --backend ort --seed {a.seed}`. "
                  f"Interleaved: both bundles in one process on ort-cpu, alternating blocks of 20 batch-1 calls "
                  f"({a.bench_runs} each; the comparison to trust on a shared machine, the fsn bench runs are minutes "
                  "apart under changing load)."]
        write_report(a.out, out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
