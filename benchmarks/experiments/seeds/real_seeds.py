"""The real catalogue (fashion-product-224 apparel) trained with several seeds: how far apart the methods are
compared with how far a method moves from one seed to the next.

    nice -n 10 .venv/bin/python -m benchmarks.experiments.seeds.real_seeds --real ../shared/data/fashion-product-224 \
        --seeds 0,1,2 --epochs 5,3,10 --work /tmp/fsn-real-seeds --out benchmarks/experiments/seeds/results/real_3seeds

Per seed: one run trains attribute, no_aam and fsn (``--epochs`` stage 1/2/3); a second run carries the same
stage-1 state on to stage-1 epochs = stage 1 + stage 2, the attribute classifier at fsn's backbone budget
(``attribute_eq``). Only training varies with the seed: splits come from the adapter and the evaluation draws
its pairs with ``--eval-seed``. Skipped (exit 0) when the data set is absent. Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from benchmarks._report import command, machine, write_report
from benchmarks._seeds import cell as _cell
from benchmarks._seeds import summarise as seeds_summary

PROTOCOLS = ("query", "manipulation", "item")
METHODS = ("attribute", "attribute_eq", "no_aam", "fsn")


def _equal_budget_run(run: Path, dest: Path) -> None:
    """Start ``dest`` from ``run``'s stage-1 state so that training it on continues the same classifier."""
    if not (dest / "stage1").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(run / "stage1", dest / "stage1")
        shutil.copy2(run / "run.json", dest / "run.json")


def train_seed(ds, work: Path, seed: int, args, bars) -> dict:
    """Train both runs of one seed and evaluate them: {"results": {protocol: {method: {...}}}, "train_s": ...}."""
    from fashionsearchnet.training.evaluate import evaluate_run
    from fashionsearchnet.training.config import TrainConfig
    from fashionsearchnet.training.trainer import train

    e1, e2, e3 = args.epochs
    run, eq = work / f"run-real-{args.preset}-s{seed}", work / f"run-real-{args.preset}-s{seed}-attr{e1 + e2}"
    common = dict(preset=args.preset, device=args.device, seed=seed, batch_size=args.batch_size,
                  global_batch=args.global_batch)
    t0 = time.monotonic()
    train(ds, run, TrainConfig(methods=("attribute", "no_aam", "fsn"), epochs=(e1, e2, e3), **common), bars=bars)
    _equal_budget_run(run, eq)
    train(ds, eq, TrainConfig(methods=("attribute",), epochs=(e1 + e2, 0, 0), **common), bars=bars)
    t_train = time.monotonic() - t0
    res = evaluate_run(run, ds, PROTOCOLS, seed=args.eval_seed, methods=("attribute", "no_aam", "fsn"),
                       device=args.device, bars=bars)
    res_eq = evaluate_run(eq, ds, PROTOCOLS, seed=args.eval_seed, methods=("attribute",), device=args.device,
                          bars=bars)
    for p in PROTOCOLS:
        res[p]["attribute_eq"] = res_eq[p]["attribute"]
        res[p].pop("fsn_region", None)  # no region truth on this catalogue: fsn_region scores plain requests as fsn
    return {"results": res, "train_s": t_train}


def summarise(per_seed: dict[int, dict], ks=(1, 30)) -> dict:
    """Median, min and max over seeds of every (protocol, method, top-k), and of the paired differences."""
    return seeds_summary(per_seed, PROTOCOLS, METHODS, ("attribute", "attribute_eq", "no_aam"), ks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default="../shared/data/fashion-product-224", help="fashion-product-224 folder")
    ap.add_argument("--real-dataset", default=None,
                    help="an already converted fashion-product dataset folder (attributes.csv); overrides --real")
    ap.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    ap.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation's pair sampling (fixed)")
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--epochs", default="5,3,10", help="stage 1,2,3 epochs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--global-batch", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default="/tmp/fsn-real-seeds", help="data and run folders (reused: resumes)")
    ap.add_argument("--out", default="benchmarks/experiments/seeds/results/real_3seeds", help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    try:
        args.epochs = tuple(int(x) for x in args.epochs.split(","))
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--epochs and --seeds take comma-separated integers, got {args.epochs!r} / {args.seeds!r}")
    if len(args.epochs) != 3:
        ap.error(f"--epochs takes three numbers (stage 1,2,3), got {args.epochs}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("real_seeds")

    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.adapters import fashion_product_to_dataset
    from fashionsearchnet.data.dataset import load_dataset

    work = Path(args.work)
    if args.real_dataset:
        data = Path(args.real_dataset)
    elif Path(args.real, "labels.csv").is_file():
        data = work / "fashion-product"
        if not (data / "attributes.csv").is_file():
            fashion_product_to_dataset(args.real, data)
    else:
        log.info("skipping: %s/labels.csv not found (pass --real FOLDER)", args.real)
        return 0
    ds = load_dataset(data)
    bars = lambda n, d: bar(n, d)  # noqa: E731
    per_seed, times = {}, {}
    for s in seeds:
        r = train_seed(ds, work, s, args, bars)
        per_seed[s], times[s] = r["results"], r["train_s"]
        log.info("seed %d done (train %.0f s)", s, r["train_s"])
    summ = summarise(per_seed)
    rows = {sp: int(len(ds.indices(sp))) for sp in ("train", "gallery", "query")}
    cmd, mach = command(), machine()
    result = {"command": cmd, "machine": mach, "dataset": str(data), "rows": rows, "epochs": list(args.epochs),
              "seeds": seeds, "eval_seed": args.eval_seed, "train_s": times, "per_seed": per_seed, "summary": summ}
    e1, e2, _ = args.epochs
    n = {p: per_seed[seeds[0]][p]["fsn"]["n"] for p in PROTOCOLS}
    md = [f"# Real catalogue over {len(seeds)} training seeds ({args.preset} preset, epochs "
          f"{'/'.join(map(str, args.epochs))})", "", f"Command: `{cmd}`", "", f"Machine: {mach}", "",
          f"Data: `{data}` ({rows}); seeds {seeds}; evaluation pairs drawn with seed {args.eval_seed}: "
          f"query {n['query']}, manipulation {n['manipulation']}, item {n['item']}. Training "
          f"{', '.join(f'{times[s]:.0f}' for s in seeds)} s per seed. `attribute_eq`: the same stage-1 classifier "
          f"trained on to {e1 + e2} epochs, fsn's backbone budget.", "",
          "Median over seeds (min to max):", "",
          "| protocol | method | top1 | top30 |", "|---|---|---|---|"]
    for p in PROTOCOLS:
        for m in METHODS:
            md.append(f"| {p} | {m} | {_cell(summ['methods'][f'{p}/{m}/top1'])} | "
                      f"{_cell(summ['methods'][f'{p}/{m}/top30'])} |")
    md += ["", "Paired differences (the same seed's runs), median over seeds (min to max):", "",
           "| protocol | difference | top1 | top30 |", "|---|---|---|---|"]
    for p in PROTOCOLS:
        for other in ("attribute", "attribute_eq", "no_aam"):
            md.append(f"| {p} | fsn − {other} | {_cell(summ['differences'][f'{p}/fsn-{other}/top1'])} | "
                      f"{_cell(summ['differences'][f'{p}/fsn-{other}/top30'])} |")
    md += ["", "Per seed, manipulation top30 / top1:", "", "| seed | " + " | ".join(METHODS) + " |",
           "|---|" + "---|" * len(METHODS)]
    for s in seeds:
        md.append(f"| {s} | " + " | ".join(f"{per_seed[s]['manipulation'][m]['top30']:.1f} / "
                                           f"{per_seed[s]['manipulation'][m]['top1']:.1f}" for m in METHODS) + " |")
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
