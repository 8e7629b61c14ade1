"""Stage-3 negatives: the paper's random negatives vs near negatives for the global representation (eqs. 7-8).

    .venv/bin/python -m benchmarks.experiments.stage3_negatives.stage3_negatives --run /tmp/fsn-det/run-synth-edge \
        --data /tmp/fsn-det/synth-24500-0-128-detailed --test /tmp/fsn-det/heldout-4500-detailed \
        --out benchmarks/experiments/stage3_negatives/results/detailed_24k

Stage 3 trains only lam and W on frozen attribute representations, so it can be redone in minutes on a trained
run: this script extracts the run's fsn representations of its training rows, then retrains lam and W from the
same fresh initialisation once per ``--global-negatives`` rule (``random``: the paper's "I- is chosen randomly";
``near``: labels one attribute away from the target), with the run's stage-3 settings. Both, the lam/W stored
with the run and the run's attribute baseline are evaluated side by side on ``--data``'s own gallery/query
splits (never trained on: the split to choose on) and on each ``--test`` catalogue (reported, not chosen on).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._report import command, machine, write_report

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import evaluate, markdown_table
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.training.checkpoint import CHECKPOINT_NAME, Checkpoint
from fashionsearchnet.training.config import TrainConfig
from fashionsearchnet.training.evaluate import method_features
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import get_preset
from fashionsearchnet.training.trainer import Trainer

RULES = ("random", "near")


def retrain_global(ck: Checkpoint, data, cfg: TrainConfig, init: dict[str, torch.Tensor], reps: np.ndarray,
                   protos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """lam, W (numpy) and the stage-3 metrics after retraining stage 3 of checkpoint ``ck`` from ``init`` on the
    training representations ``reps`` with ``cfg`` (its global_negatives rule)."""
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(data, tmp, cfg)
        model = FashionSearchNet(tr.schema, tr.preset, "fsn")
        model.load_state_dict(ck.model)
        with torch.no_grad():
            model.lam.copy_(init["lam"])
            model.W.copy_(init["W"])
        t0 = time.monotonic()
        metrics = tr.stage3(model, reps, protos, Path(tmp) / "state.pt", None)
        metrics[-1]["stage3_s"] = time.monotonic() - t0
    return model.lam.detach().numpy().copy(), model.W.detach().numpy().copy(), metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="run folder with a finished fsn/ (and attribute/)")
    ap.add_argument("--data", required=True, help="the run's training catalogue (its gallery/query = validation)")
    ap.add_argument("--test", nargs="*", default=[], help="held-out catalogues (gallery/query splits)")
    ap.add_argument("--epochs", type=int, default=10, help="stage-3 epochs (the run's was 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocols", default="manipulation,query,item,adde")
    ap.add_argument("--out", default="benchmarks/experiments/stage3_negatives/results/stage3_negatives")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train_data = load_dataset(args.data)
    ck = Checkpoint.load(args.run / "fsn" / CHECKPOINT_NAME)
    torch.manual_seed(args.seed)
    fresh = FashionSearchNet(train_data.schema, get_preset(ck.config["preset"]), "fsn")
    init = {"lam": fresh.lam.detach().clone(), "W": fresh.W.detach().clone()}
    cfgs = {rule: TrainConfig(**{**ck.config, "methods": ("fsn",), "epochs": (0, 0, args.epochs), "seed": args.seed,
                                 "global_negatives": rule, "checkpoint_every_s": 1e9}) for rule in RULES}
    # the training rows' representations do not depend on lam/W: extracted once, with the run's own weights
    fresh.load_state_dict(ck.model)
    reps, protos = Trainer(train_data, args.run, cfgs["random"]).reps_and_prototypes(fresh)
    trained = {rule: retrain_global(ck, train_data, cfgs[rule], init, reps, protos) for rule in RULES}
    lam_w = {"fsn (stored with the run)": (ck.model["lam"].numpy(), ck.model["W"].numpy()),
             **{f"fsn, {rule} negatives": trained[rule][:2] for rule in RULES}}
    protocols = tuple(args.protocols.split(","))
    results: dict[str, dict] = {}
    for name, path in [("validation", args.data)] + [(f"test {Path(t).name}", t) for t in args.test]:
        ds = train_data if path == args.data else load_dataset(path)
        rows = np.union1d(ds.indices("gallery"), ds.indices("query"))
        feats, _, meta = method_features(args.run, "fsn", ds, rows)
        table = FeatureTable(attr_reps=feats.attr_reps, region_reps=None, probs=feats.probs)
        searchers = {label: ExactSearcher(SearchParams(meta["schema"], meta["prototypes"], lam, W,
                                                       meta["region_weight"]), table, "fsn")
                     for label, (lam, W) in lam_w.items()}
        if (args.run / "attribute" / CHECKPOINT_NAME).is_file():
            af, _, am = method_features(args.run, "attribute", ds, rows)
            searchers["attribute (reference)"] = ExactSearcher(
                SearchParams(am["schema"], am["prototypes"], lam_w["fsn (stored with the run)"][0],
                             lam_w["fsn (stored with the run)"][1], am["region_weight"]),
                FeatureTable(attr_reps=af.attr_reps, region_reps=None, probs=af.probs), "attribute")
        results[name] = evaluate(ds, searchers, protocols=protocols)
    out = {"command": command(), "machine": machine(f"torch {torch.__version__}"), "run": str(args.run),
           "epochs": args.epochs, "seed": args.seed,
           "stage3_metrics": {rule: trained[rule][2] for rule in RULES}, "results": results}
    md = ["# Stage-3 negatives: the paper's random rule vs near negatives (lam and W retrained, same init)", "",
          f"Command: `{out['command']}`", "", f"Machine: {out['machine']}", "",
          "Last stage-3 epoch: " + "; ".join(
              f"{rule}: loss {trained[rule][2][-1]['loss']:.4f}, global triplet acc "
              f"{trained[rule][2][-1]['global_triplet_acc']:.4f}, {trained[rule][2][-1]['stage3_s']:.0f} s"
              for rule in RULES), ""]
    for name, res in results.items():
        md += [f"## {name}", "", markdown_table(res, ks=(1, 5, 10, 30)), "",
               markdown_table(res, ks=(1, 5, 10, 30), metric="prec"), ""]
    write_report(args.out, out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
