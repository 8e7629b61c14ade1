"""Runtime benchmark: export a preset's model (random weights: speed does not depend on them) to a bundle and
run ``fsn bench`` on it (ort-cpu, ort-cuda, trt where present, and torch-eager in the same run).

Full run (the issue's targets; ~3-4 min per preset on a quiet 2-core machine)::

    nice -n 10 .venv/bin/python -m benchmarks.perf.bench_runtime --preset edge --out benchmarks/perf/results/runtime_edge
    nice -n 10 .venv/bin/python -m benchmarks.perf.bench_runtime --preset paper --out benchmarks/perf/results/runtime_paper

Smoke test: ``--runs 20 --warmup 3``. Writes OUT.json (``{"<backend>": {...}}``) and OUT.md (table, command,
machine). ``--precision fp16`` exports an fp16 bundle; ``--threads N`` sets ONNX Runtime/torch threads.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fashionsearchnet.app.cli import main as fsn
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.training.checkpoint import Checkpoint
from fashionsearchnet.training.presets import get_preset

SCHEMA = {  # the synthetic catalogue's schema (5 attributes, 3 regions, 5 region pairs)
    "attributes": [
        {"name": "category", "values": ["tshirt", "shirt", "dress", "coat", "top", "sweater"]},
        {"name": "collar", "values": ["round", "v", "high", "hood", "shirt"]},
        {"name": "sleeve", "values": ["none", "short", "long"]},
        {"name": "color", "values": ["red", "green", "blue", "yellow", "black", "white", "grey", "pink"]},
        {"name": "pattern", "values": ["plain", "stripe", "dots", "check"]},
    ],
    "regions": {
        "collar": {"from": ["collar"], "attributes": ["color"]},
        "sleeve": {"from": ["sleeve"], "attributes": ["color", "pattern"]},
        "torso": {"from": ["category", "color", "pattern"], "attributes": ["color", "pattern"],
                  "subtract": ["collar", "sleeve"], "primary": True},
    },
}


def write_checkpoint(path: Path, preset_name: str, seed: int = 0) -> Path:
    return Checkpoint.untrained(Schema.from_dict(SCHEMA), get_preset(preset_name), "fsn", seed, 0.3,
                                config={"note": "random weights (benchmark)"}).save(path / "fsn" / "checkpoint.pt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--out", required=True, help="output path without suffix (writes OUT.json and OUT.md)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="threads for ORT and torch alike (default 1: apples to apples)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    ap.add_argument("--backends", default="ort-cpu,ort-cuda,trt,torch-eager,torch-cuda")
    ap.add_argument("--work", default=None, help="folder for the run and bundle (default: a temporary one)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fsn-bench-") as tmp:
        work = Path(a.work or tmp)
        ck = write_checkpoint(work / "run", a.preset)
        bundle = work / f"bundle-{a.preset}-{a.precision}"
        rc = fsn(["export", str(ck), "--out", str(bundle), "--precision", a.precision])
        if rc:
            return rc
        return fsn(["bench", str(bundle), "--json", f"{a.out}.json", "--runs", str(a.runs), "--warmup", str(a.warmup),
                    "--backends", a.backends, "--checkpoint", str(ck)]
                   + (["--threads", str(a.threads)] if a.threads is not None else []))


if __name__ == "__main__":
    sys.exit(main())
