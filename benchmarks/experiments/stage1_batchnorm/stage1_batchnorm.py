"""Why the edge/tiny presets use BatchNorm: stage-1 (L_C) training with and without it, same data, same seed.

    .venv/bin/python -m benchmarks.experiments.stage1_batchnorm.stage1_batchnorm --data /tmp/s4k --epochs 4 --out benchmarks/experiments/stage1_batchnorm/results/edge_4k

``--data`` is a dataset folder (e.g. ``fsn synth /tmp/s4k --count 4000 --seed 3``). Trains the edge preset's
backbone + classifiers with SGD (lr 0.01, momentum 0.9, weight decay 5e-4, batch 32) for each setting and reports
the training loss and per-attribute accuracy on up to 400 gallery images after every epoch. Writes OUT.json + OUT.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.data.preprocess import Preprocessing, read_image
from fashionsearchnet.training import losses
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import PRESETS

from benchmarks._report import command, machine, write_report


def run(ds, preset, epochs: int, seed: int) -> list[dict]:
    torch.manual_seed(seed)
    tr, va = ds.indices("train"), ds.indices("gallery")[:400]
    pre = Preprocessing(preset.input_size)
    load = lambda rows: torch.from_numpy(np.stack([pre(read_image(ds.images[i])) for i in rows]))  # noqa: E731
    xt, xv = load(tr), load(va)
    yt, yv = torch.from_numpy(ds.labels[tr]).long(), torch.from_numpy(ds.labels[va]).long()
    m = FashionSearchNet(ds.schema, preset, "fsn")
    params = [p for n, p in m.named_parameters() if n.startswith(("conv", "norms", "classifier"))]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    out, t0 = [], time.monotonic()
    for ep in range(epochs):
        m.train()
        perm, total = torch.randperm(len(xt), generator=g), 0.0
        for i in range(0, len(perm), 32):
            b = perm[i:i + 32]
            loss = losses.classification_loss(m.forward_backbone(xt[b])["logits"], yt[b], m.offsets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        m.eval()
        with torch.no_grad():
            lg = torch.cat([m.forward_backbone(xv[i:i + 128])["logits"] for i in range(0, len(xv), 128)])
        acc = {a.name: round(float((lg[:, m.offsets[k]:m.offsets[k + 1]].argmax(1) == yv[:, k]).float().mean()), 3)
               for k, a in enumerate(ds.schema.attributes)}
        out.append({"epoch": ep + 1, "train_loss": round(total / len(xt), 3), "val_acc": acc,
                    "elapsed_s": round(time.monotonic() - t0)})
        print(preset.batch_norm, out[-1], flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/experiments/stage1_batchnorm/results/edge_4k")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    res = {bn: run(ds, dataclasses.replace(PRESETS["edge"], batch_norm=bn), args.epochs, args.seed) for bn in (True, False)}
    cmd, mach = command(), machine(f"torch {torch.__version__}")
    names = list(ds.schema.names)
    lines = ["# Stage 1 with and without BatchNorm (edge preset)", "", f"Command: `{cmd}`", "", f"Machine: {mach}", "",
             "| BatchNorm | epoch | train loss | " + " | ".join(f"val acc {n}" for n in names) + " |",
             "|" + "---|" * (3 + len(names))]
    for bn in (True, False):
        for r in res[bn]:
            lines.append(f"| {'yes' if bn else 'no'} | {r['epoch']} | {r['train_loss']} | "
                         + " | ".join(f"{r['val_acc'][n]:.3f}" for n in names) + " |")
    write_report(args.out, {"command": cmd, "machine": mach, "batch_norm": res[True], "no_batch_norm": res[False]},
                 lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
