"""Issue 21 throughput: indexing with the single-process indexer and with 1 and 2 Ray extractor actors (same run,
same bundle and catalogue), training with 1 and 2 data-parallel processes; a capacity estimate for 10 million
images on 8/32/128 workers from the measured per-worker rate.

    nice -n 10 .venv/bin/python -m benchmarks.perf.bench_distributed --out benchmarks/perf/results/distributed

Small on purpose (the machine is shared): a synthetic catalogue (--images, default 480), an edge bundle with
random weights (speed does not depend on them), a tiny-preset training of one epoch per stage. Writes OUT.json
and OUT.md (tables, command, machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import command, machine, write_report
from benchmarks.perf.bench_runtime import write_checkpoint

CATALOGUE = 10_000_000
WORKERS = (8, 32, 128)


def _index(bundle: Path, data: Path, out: Path, **kw) -> float:
    from fashionsearchnet.gallery.indexer import index_catalogue

    t0 = time.perf_counter()
    g = index_catalogue(bundle, data, out, batch_size=32, **kw)
    dt = time.perf_counter() - t0
    return len(g) / dt


def _train(data: Path, out: Path, nproc: int, preset: str) -> dict[str, float]:
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.config import TrainConfig
    from fashionsearchnet.training.distributed import spawn_train
    from fashionsearchnet.training.trainer import train

    cfg = TrainConfig(preset=preset, methods=("fsn",), epochs=(1, 1, 1), seed=0, batch_size=32, global_batch=64)
    t0 = time.perf_counter()
    if nproc == 1:
        train(load_dataset(data), out, cfg)
    else:
        spawn_train(nproc, str(data), str(out), cfg)
    wall = time.perf_counter() - t0
    m = Checkpoint.load(out / "fsn" / "checkpoint.pt").metrics
    return {"wall_s": wall, "stage1_rows_per_s": m["stage1"][0]["rows_per_s"],
            "stage2_rows_per_s": m["stage2"][0]["rows_per_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=480)
    ap.add_argument("--preset", default="edge", help="bundle preset for indexing (default edge)")
    ap.add_argument("--train-preset", default="tiny")
    ap.add_argument("--train-images", type=int, default=192)
    args = ap.parse_args(argv)

    import ray

    from fashionsearchnet.data.synth import generate
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.training.presets import get_preset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        size = get_preset(args.preset).input_size
        data = generate(tmp / "data", args.images, seed=3, size=size)
        write_checkpoint(tmp / "run", args.preset)
        export_run(tmp / "run", tmp / "bundle", method="fsn")
        index = {"single_process": _index(tmp / "bundle", data, tmp / "g0")}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for w in (1, 2):
                index[f"ray_{w}_workers"] = _index(tmp / "bundle", data, tmp / f"g{w}", ray=True, ray_workers=w)
        finally:
            ray.shutdown()
        tdata = generate(tmp / "tdata", args.train_images, seed=4, size=get_preset(args.train_preset).input_size)
        training = {f"nproc_{n}": _train(tdata, tmp / f"r{n}", n, args.train_preset) for n in (1, 2)}

    per_worker = index["ray_1_workers"]
    capacity = {str(w): CATALOGUE / (w * per_worker) / 3600 for w in WORKERS}
    result = {"images": args.images, "preset": args.preset, "index_images_per_s": index, "training": training,
              "per_worker_images_per_s": per_worker, "capacity_hours_10M": capacity,
              "command": command(), "machine": machine(f"ray {ray.__version__}")}
    md = [f"# Distributed indexing and training ({args.images} synthetic images, {args.preset} bundle, random "
          f"weights)", "", "| Indexing path | images/s (wall, start-up of actors included) |", "|---|---|"]
    md += [f"| {k} | {v:.1f} |" for k, v in index.items()]
    md += ["", f"Training ({args.train_preset} preset, {args.train_images} images, 1 epoch per stage; rows/s of the "
           f"global batch):", "", "| Processes | wall s | stage 1 rows/s | stage 2 rows/s |", "|---|---|---|---|"]
    md += [f"| {k.split('_')[1]} | {v['wall_s']:.1f} | {v['stage1_rows_per_s']:.1f} | {v['stage2_rows_per_s']:.1f} |"
           for k, v in training.items()]
    md += ["", f"Capacity for {CATALOGUE:,} images at the measured one-actor rate ({per_worker:.1f} images/s per "
           f"worker = one CPU core here), linear scaling assumed:", "", "| Workers | hours |", "|---|---|"]
    md += [f"| {w} | {h:.2f} |" for w, h in capacity.items()]
    md += ["", f"Command: `{command()}`", "", f"Machine: {machine(f'ray {ray.__version__}')} (shared by other jobs: "
           f"figures are lower bounds)"]
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
