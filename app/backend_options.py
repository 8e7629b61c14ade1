"""``--device`` / ``--precision`` for the commands that extract features (index, search, eval, serve), and the
:class:`~fashionsearchnet.runtime.backends.BackendChoice` they add up to with ``--backend``."""
from __future__ import annotations

import argparse

PRECISIONS = ("fp32", "bf16", "fp16")


def add_arguments(p: argparse.ArgumentParser, device: bool = True) -> None:
    """Add ``--precision`` (and ``--device`` unless the command already has one)."""
    if device:
        p.add_argument("--device", default=None,
                       help="OpenVINO device for --backend openvino: CPU (default), GPU, GPU.<n>, NPU or AUTO")
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="inference precision for --backend openvino: fp32 (default), bf16 or fp16 where the device "
                        "supports it (an error otherwise); int8 bundles run as they are")


def backend_choice(args: argparse.Namespace):
    """``--backend``, ``--device``, ``--precision`` as one BackendChoice (passes wherever a backend name does)."""
    from fashionsearchnet.runtime.backends import BackendChoice

    return BackendChoice(args.backend, getattr(args, "device", None), getattr(args, "precision", None))
