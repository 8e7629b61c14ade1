"""The tiny bundle that the runtime and gallery tests use without torch, checked in at
``tests/support/assets/tiny_bundle`` (about 0.4 MB), and the torch-side helpers that make it.

The asset is the tiny preset (64 px input) on the synthetic catalogue's schema (``fsn synth``'s five
attributes and three regions), randomly initialised with ``torch.manual_seed(SEED)`` and random prototypes
from ``numpy.random.default_rng(SEED)``, exported fp32 by ``export.exporter.export_run``. Weights do not need
training for what those tests check (file formats, parity, shapes, boxes, search on whatever the model sees).
Regenerate it (needs torch) after a change to the bundle format, and commit both the folder and its sha256
list::

    .venv/bin/python -m tests.support.make_tiny_bundle

``tests/export/test_tiny_bundle_asset.py`` exports the same model at test time and fails, naming this command,
when the checked-in asset no longer matches what the exporter writes.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.data.synth import synthetic_schema

SEED = 0
ASSETS = Path(__file__).resolve().parent / "assets"
ASSET = ASSETS / "tiny_bundle"
SHA256_LIST = ASSETS / "tiny_bundle.sha256"
COMMAND = "python -m tests.support.make_tiny_bundle"


def schema() -> Schema:
    """The schema of the tiny bundle: the synthetic catalogue's."""
    return synthetic_schema()


def make_tiny_checkpoint(path: str | Path, method: str = "fsn", seed: int = SEED) -> Path:
    """Write RUN/<method>/checkpoint.pt for a randomly initialised tiny-preset model (torch seeded with ``seed``)."""
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    return Checkpoint.untrained(schema(), PRESETS["tiny"], method, seed, 0.3).save(Path(path) / method / "checkpoint.pt")


def export_tiny_bundle(root: str | Path, method: str = "fsn", precision: str = "fp32",
                       seed: int = SEED) -> tuple[Path, Path]:
    """(bundle folder, run folder) under ``root``: the tiny checkpoint exported with torch (about 5 s)."""
    from fashionsearchnet.export.exporter import export_run

    root = Path(root)
    make_tiny_checkpoint(root / "run", method, seed)
    export_run(root / "run", root / "bundle", precision=precision, method=method)
    return root / "bundle", root / "run"


def file_digests(folder: str | Path) -> dict[str, str]:
    """{file name: sha256} of every file in ``folder``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def recorded_digests() -> dict[str, str]:
    """The sha256 list committed next to the asset (``sha256sum`` format)."""
    out = {}
    for line in SHA256_LIST.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        out[name.lstrip("*")] = digest
    return out


def asset_copy(tmp_path_factory) -> Path:
    """A fresh copy of the checked-in asset (checked against the recorded sha256 list first); no torch needed.
    Tests take it through the session fixture ``tiny_bundle`` (tests/conftest.py)."""
    got, want = file_digests(ASSET), recorded_digests()
    assert got == want, f"{ASSET} differs from {SHA256_LIST}: regenerate both with `{COMMAND}`"
    dest = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    shutil.copytree(ASSET, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ASSET, help="bundle folder to (re)write (default: the asset)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fsn-tiny-") as tmp:
        bundle, _ = export_tiny_bundle(tmp)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(bundle, args.out)
    digests = file_digests(args.out)
    if args.out == ASSET:
        SHA256_LIST.write_text("".join(f"{d}  {n}\n" for n, d in digests.items()))
    for name, d in digests.items():
        sys.stdout.write(f"{d}  {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
