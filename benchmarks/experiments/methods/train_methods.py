"""Train attribute / no_aam / fsn side by side and evaluate them (issue 3's measurement).

Full run on the synthetic catalogue (20k train, 4k gallery, 500 queries; the lead schedules it)::

    nice -n 10 .venv/bin/python -m benchmarks.experiments.methods.train_methods --count 24500 --splits 0.8163,0.1633,0.0204 \
        --preset edge --epochs 10,10,10 --work /tmp/fsn-train-methods \
        --real ../shared/data/fashion-product-224 --out benchmarks/experiments/methods/results/basic_24k

Smoke test (a minute): ``--count 300 --size 64 --preset tiny --epochs 2,2,2 --out /tmp/tm``.
Writes ``OUT.json`` and ``OUT.md`` (tables, the command, the machine, timings). Also the mean IoU of each
attribute's AAM box (fsn) with its true region from synth ``masks/`` (see evaluation/localisation.py for the
mapping: collar -> collar, sleeve -> sleeve, color/pattern -> torso, category -> whole garment) and of each
region box with its region. ``--real`` (fashion-product-224) is skipped when the folder is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._report import command


def _machine(device: str) -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else "none"
    return (f"{platform.node()} {platform.system()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}, device {device}, GPU {gpu}")


def _localisation(run: Path, dataset, rows: np.ndarray, device: str) -> dict:
    from fashionsearchnet.training.checkpoint import load_run
    from fashionsearchnet.training.extract import extract
    from fashionsearchnet.evaluation.localisation import (SYNTH_ATTRIBUTE_REGIONS, SYNTH_REGION_LABELS,
                                                         mask_path, mean_box_coverage, mean_box_iou, read_mask)

    model, meta = load_run(run / "fsn", device=device)
    feats = extract(model, dataset, rows, device=device)
    masks = [read_mask(mask_path(dataset, int(i))) for i in rows]
    s = meta["schema"]
    h = w = meta["preset"].conv5_size()
    A = len(s.attributes)
    attr = mean_box_iou(feats["boxes"][:, :A], masks, list(s.names), SYNTH_ATTRIBUTE_REGIONS, (h, w))
    reg = mean_box_iou(feats["boxes"][:, A:], masks, [r.name for r in s.regions], SYNTH_REGION_LABELS, (h, w))
    whole = np.broadcast_to(np.array([0, 0, w - 1, h - 1], np.float32), (len(rows), A, 4))
    base = mean_box_iou(whole, masks, list(s.names), SYNTH_ATTRIBUTE_REGIONS, (h, w))
    cover = mean_box_coverage(feats["boxes"][:, :A], masks, list(s.names), SYNTH_ATTRIBUTE_REGIONS, (h, w))
    rcover = mean_box_coverage(feats["boxes"][:, A:], masks, [r.name for r in s.regions], SYNTH_REGION_LABELS, (h, w))
    return {"images": int(len(rows)), "aam_box_iou": attr, "region_box_iou": reg, "whole_map_iou": base,
            "aam_box_coverage": cover, "region_box_coverage": rcover,
            "aam_box_area": float(_area(feats["boxes"][:, :A], (h, w)))}


def _area(boxes: np.ndarray, hw: tuple[int, int]) -> float:
    """Mean box area as a fraction of the map (cells are inclusive)."""
    return float(((boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)).mean() / (hw[0] * hw[1]))


def _train_eval(data: Path, run: Path, args, protocols, epochs: tuple[int, ...] | None = None) -> dict:
    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.evaluate import evaluate_run
    from fashionsearchnet.training.config import TrainConfig
    from fashionsearchnet.training.trainer import train

    ds = load_dataset(data)
    cfg = TrainConfig(preset=args.preset, methods=args.methods, device=args.device, seed=args.seed,
                      epochs=epochs or args.epochs, batch_size=args.batch_size, global_batch=args.global_batch)
    bars = lambda n, d: bar(n, d)  # noqa: E731
    t0 = time.monotonic()
    summary = train(ds, run, cfg, bars=bars)
    t_train = time.monotonic() - t0
    t0 = time.monotonic()
    res = evaluate_run(run, ds, protocols, seed=args.seed, max_queries=args.max_queries, device=args.device,
                       bars=bars)
    t_eval = time.monotonic() - t0
    metrics = {m: s.get("metrics") for m, s in summary.items()}
    return {"dataset": str(data), "rows": {sp: int(len(ds.indices(sp))) for sp in ("train", "gallery", "query")},
            "results": res, "train_s": t_train, "eval_s": t_eval, "train_metrics": metrics, "dataset_obj": ds}


def _targets(r: dict) -> dict[str, float]:
    """Issue 3's synthetic targets from an eval result {protocol: {method: {...}}}."""
    t30 = lambda p, m: r.get(p, {}).get(m, {}).get("top30", float("nan"))  # noqa: E731
    out = {
        "fsn_minus_attribute_manipulation_top30": t30("manipulation", "fsn") - t30("manipulation", "attribute"),
        "fsn_minus_no_aam_manipulation_top30": t30("manipulation", "fsn") - t30("manipulation", "no_aam"),
        "fsn_region_over_fsn_region_top30": t30("region", "fsn_region") / max(t30("region", "fsn"), 1e-9),
    }
    if "region_differ" in r:
        out["fsn_region_over_fsn_region_differ_top30"] = (t30("region_differ", "fsn_region")
                                                         / max(t30("region_differ", "fsn"), 1e-9))
    return out


def _table(res: dict, protos, ks=(1, 10, 30, 50)) -> str:
    lines = ["| protocol | method | " + " | ".join(f"top{k}" for k in ks) + " | n |",
             "|" + "---|" * (len(ks) + 3)]
    for p in protos:
        for m, r in res.get(p, {}).items():
            lines.append(f"| {p} | {m} | " + " | ".join(f"{r[f'top{k}']:.1f}" for k in ks) + f" | {r['n']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=24500)
    ap.add_argument("--splits", default="0.8163,0.1633,0.0204", help="train,gallery,query fractions")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default="basic",
                    help="synthetic catalogue profile: basic, detailed, hard or ambiguous (fsn synth)")
    ap.add_argument("--methods", default="attribute,no_aam,fsn",
                    help="methods to train, comma-separated (default all three; fsn_region comes with fsn)")
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--epochs", default="10,10,10")
    ap.add_argument("--real-epochs", default=None, help="epochs for the real catalogue (default: --epochs)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--global-batch", type=int, default=256, help="rows per stage-3 step")
    ap.add_argument("--workers", type=int, default=None, help="synth rendering processes (default: one per CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--iou-images", type=int, default=500, help="gallery images used for the IoU numbers")
    ap.add_argument("--work", default="/tmp/fsn-train-methods", help="data and run folders (reused: resumes)")
    ap.add_argument("--real", default="../shared/data/fashion-product-224", help="fashion-product-224 folder")
    ap.add_argument("--real-dataset", default=None,
                    help="an already converted fashion-product dataset folder (attributes.csv); overrides --real")
    ap.add_argument("--out", default="benchmarks/experiments/methods/results/basic_24k", help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    e = [int(x) for x in args.epochs.split(",")]
    args.epochs = tuple(e * 3 if len(e) == 1 else e)
    re_ = [int(x) for x in (args.real_epochs or ",".join(map(str, args.epochs))).split(",")]
    args.real_epochs = tuple(re_ * 3 if len(re_) == 1 else re_)
    import logging
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.synth import generate

    work = Path(args.work)
    splits = tuple(float(x) for x in args.splits.split(","))
    data = work / (f"synth-{args.count}-{args.seed}-{args.size}"
                   + ("" if args.profile == "basic" else f"-{args.profile}"))
    if not (data / "attributes.csv").is_file():
        with bar(args.count, "synth", "img") as adv:
            generate(data, args.count, seed=args.seed, size=args.size, splits=splits, progress=adv,
                     workers=args.workers, profile=args.profile)
    synth = _train_eval(data, work / f"run-synth-{args.preset}", args,
                        ("query", "manipulation", "region", "region_differ", "region_match", "item", "adde"))
    ds = synth.pop("dataset_obj")
    iou_rows = ds.indices("gallery")[: args.iou_images]
    synth["localisation"] = _localisation(work / f"run-synth-{args.preset}", ds, iou_rows, args.device)
    real = None
    dest = Path(args.out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = {k: v for k, v in synth.items()}
    dest.with_suffix(".partial.json").write_text(json.dumps({"synthetic": partial}, indent=2, default=float),
                                                 encoding="utf-8")
    if args.real_dataset or Path(args.real, "labels.csv").is_file():
        from fashionsearchnet.data.adapters import fashion_product_to_dataset
        rdata = Path(args.real_dataset) if args.real_dataset else work / "fashion-product"
        if not (rdata / "attributes.csv").is_file():
            fashion_product_to_dataset(args.real, rdata)
        real = _train_eval(rdata, work / f"run-real-{args.preset}", args, ("query", "manipulation", "item"),
                           epochs=args.real_epochs)
        real.pop("dataset_obj")
    else:
        logging.getLogger("train_methods").info("skipping the real catalogue: %s/labels.csv not found", args.real)

    r = synth["results"]
    targets = _targets(r)
    cmd = command()
    out = {"command": cmd, "machine": _machine(args.device), "args": {k: v for k, v in vars(args).items()},
           "synthetic": synth, "real": real, "targets": targets}
    dest.with_suffix(".json").write_text(json.dumps(out, indent=2, default=float), encoding="utf-8")
    loc = synth["localisation"]
    fmt = lambda d: ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in d.items())  # noqa: E731
    md = [f"# Training methods side by side ({args.preset} preset)", "", f"Command: `{cmd}`", "",
          f"Machine: {_machine(args.device)}", "",
          f"## Synthetic catalogue ({args.profile} profile, {synth['rows']}; train {synth['train_s']:.0f} s, eval {synth['eval_s']:.0f} s)",
          "", _table(r, ("query", "manipulation", "region", "region_differ", "region_match", "item", "adde")), "",
          f"Targets: fsn - attribute (manipulation top30) {targets['fsn_minus_attribute_manipulation_top30']:+.1f} "
          f"(want >= +10); fsn - no_aam {targets['fsn_minus_no_aam_manipulation_top30']:+.1f} (want >= +3); "
          f"fsn_region / fsn (region top30) {targets['fsn_region_over_fsn_region_top30']:.2f}x (want >= 2x).", "",
          f"AAM box IoU with the true region ({loc['images']} gallery images): {fmt(loc['aam_box_iou'])}; "
          f"whole-map box for comparison: {fmt(loc['whole_map_iou'])}; region boxes: {fmt(loc['region_box_iou'])}. "
          f"Share of the true region inside the box: AAM boxes {fmt(loc['aam_box_coverage'])}; region boxes "
          f"{fmt(loc['region_box_coverage'])}; mean AAM box area {loc['aam_box_area']:.2f} of the map.",
          ""]
    if real is not None:
        md += [f"## fashion-product-224 apparel ({real['rows']}; train {real['train_s']:.0f} s)", "",
               _table(real["results"], ("query", "manipulation", "item")), ""]
    else:
        md += ["fashion-product-224: not found, skipped.", ""]
    dest.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
