"""INT8 with float biases (``QuantizeBias=False``, what TensorRT parses; the export's default since issue 18) vs
int32 biases (ONNX Runtime's default, the export's old setting), on the same run and the same calibration images:
manipulation Top-30 and interleaved batch-1 ort-cpu latency, fp32 alongside. Reuses the work folder of
``int8_accuracy.py`` (its run, data, fp32 and int8 bundles)::

    python -m benchmarks.experiments.int8_accuracy.int8_accuracy ... --work W --out OUT1
    python -m benchmarks.experiments.int8_accuracy.int8_bias_ab --work W --calibration-images 128 \\
        --out benchmarks/experiments/int8_accuracy/results/bias_float_vs_int32

Writes OUT.json and OUT.md (command, machine, both Top-30, latency per stage)."""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from fashionsearchnet.app.cli import main as fsn

from benchmarks._report import command, machine, write_report
from benchmarks.experiments.int8_accuracy.int8_accuracy import interleaved_latency


def _run(argv: list[str]) -> None:
    if fsn(argv):
        raise SystemExit(f"int8_bias_ab: `fsn {' '.join(shlex.quote(a) for a in argv)}` failed")


def export_int32_bias(run: Path, out: Path, data: Path, count: int) -> None:
    """``fsn export --precision int8`` with ONNX Runtime's QuantizeBias forced back to True."""
    import onnxruntime.quantization as oq

    real = oq.quantize_static

    def with_bias(*a, **kw):
        kw["extra_options"] = dict(kw.get("extra_options") or {}, QuantizeBias=True)
        return real(*a, **kw)

    oq.quantize_static = with_bias  # export/quantize.py imports it at call time
    try:
        _run(["export", str(run), "--out", str(out), "--precision", "int8", "--calibration", str(data),
              "--calibration-images", str(count)])
    finally:
        oq.quantize_static = real


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="int8_accuracy.py's --work folder")
    ap.add_argument("--calibration-images", type=int, default=256, help="as given to int8_accuracy.py")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    work = Path(a.work)
    run = next(work.glob("run-*"))
    data = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("synth-"))
    old = work / "bundle-int8-biasq"
    if not old.exists():
        export_int32_bias(run, old, data, a.calibration_images)
    tops = {}
    for name, b in (("fp32", work / "bundle-fp32"), ("int8 float bias", work / "bundle-int8"), ("int8 int32 bias", old)):
        ev = work / f"eval-ab-{b.name}.json"
        _run(["eval", str(b), str(data), "--json", str(ev), "--protocols", "manipulation", "--backend", "ort",
              "--seed", str(a.seed)])
        tops[name] = json.loads(ev.read_text(encoding="utf-8"))["manipulation"]["fsn"]
    lat = interleaved_latency({k: b for k, b in (("fp32", work / "bundle-fp32"), ("int8 float bias", work / "bundle-int8"),
                                                  ("int8 int32 bias", old))}, a.runs)
    md = ["# INT8 biases: float (TensorRT-parsable) vs int32 (ONNX Runtime default)", "",
          f"Command: `{command()}`", "", f"Machine: {machine()}", "",
          f"Run `{run}`, data `{data}`, {a.calibration_images} calibration images, manipulation protocol "
          f"({tops['fp32']['n']} queries), interleaved ort-cpu batch-1 ({a.runs} calls each).", "",
          "| bundle | Top-1 | Top-30 | batch-1 p50 ms | backbone p50 ms |", "|---|---|---|---|---|"]
    for k in tops:
        md.append(f"| {k} | {tops[k]['top1']:.2f} | {tops[k]['top30']:.2f} | {lat[k]['total_ms_p50']:.2f} | "
                  f"{lat[k]['backbone_ms_p50']:.2f} |")
    write_report(a.out, {"command": command(), "machine": machine(), "run": str(run), "top": tops, "latency": lat}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
