"""fsn train DATA --out RUN --preset P --method M[,M...] [--device cpu|cuda] [--seed S] [--epochs E | E1,E2,E3]
[--backbone-weights FILE]: writes RUN/<method>/checkpoint.pt; rerunning the same command resumes."""
from __future__ import annotations

import argparse
import json
import logging

from fashionsearchnet.app.argtypes import stage_epochs
from fashionsearchnet.errors import UsageError
from fashionsearchnet.search.params import DEFAULT_REGION_WEIGHT
from fashionsearchnet.training.triplets import GLOBAL_NEGATIVES  # numpy only: no torch at parse time

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset folder (attributes.csv + images; schema.json optional)")
    p.add_argument("--out", required=True, help="run folder (created; an existing one is resumed)")
    p.add_argument("--preset", default="edge", help="network size: paper | edge | tiny (default edge)")
    p.add_argument("--method", default="attribute,no_aam,fsn",
                   help="comma list of attribute, no_aam, fsn (fsn_region = fsn); default all three")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epochs", type=stage_epochs, default=(10, 10, 10), help="epochs per stage: E or E1,E2,E3 (default 10)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size for stages 1-2 (default 32)")
    p.add_argument("--global-batch", type=int, default=256,
                   help="rows per stage-3 (global representation) step (default 256)")
    p.add_argument("--global-negatives", default="random", choices=GLOBAL_NEGATIVES,
                   help="stage-3 negatives: random (the paper's rule, default) or near (labels one attribute away "
                        "from the target: harder triplets)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01, as the paper)")
    p.add_argument("--backbone-weights", default=None,
                   help="local torchvision AlexNet state dict (features.* keys) for conv1-conv4 (paper preset)")
    p.add_argument("--checkpoint-every", type=float, default=120.0, help="seconds between mid-epoch checkpoints")
    p.add_argument("--region-weight", type=float, default=DEFAULT_REGION_WEIGHT,
                   help=f"fsn_region down-weight stored with the run, in [0, 1] (default {DEFAULT_REGION_WEIGHT}, "
                        f"chosen on a validation split)")


def run(args: argparse.Namespace) -> int:
    import torch

    from fashionsearchnet.app.progress import bar
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.config import TrainConfig
    from fashionsearchnet.training.trainer import train

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        from fashionsearchnet.errors import BackendUnavailable
        raise BackendUnavailable(f"--device {args.device}: no CUDA device is visible to torch; use --device cpu")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise UsageError(f"--device {args.device!r}: use cpu or cuda")
    methods = tuple(m.strip() for m in args.method.split(",") if m.strip())
    cfg = TrainConfig(preset=args.preset, methods=methods, device=args.device, seed=args.seed, epochs=args.epochs,
                      batch_size=args.batch_size, global_batch=args.global_batch,
                      global_negatives=args.global_negatives, lr=args.lr, backbone_weights=args.backbone_weights,
                      checkpoint_every_s=args.checkpoint_every, region_weight=args.region_weight)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    dataset = load_dataset(args.data)
    summary = train(dataset, args.out, cfg, bars=lambda total, desc: bar(total, desc, "it"))
    for m, s in summary.items():
        last = {k: (v[-1] if isinstance(v, list) and v else v) for k, v in s.get("metrics", {}).items()}
        log.info("%s: %s %s", m, s["checkpoint"], json.dumps(last, default=float)[:400])
    return 0
