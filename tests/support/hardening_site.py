"""A tiny deployed site for the hardening tests: a bundle (tiny stand-in model), a catalogue folder of
synthetic photos and the gallery indexed from it. Needs torch (the bundle is exported at test time)."""
from __future__ import annotations

import shutil
from pathlib import Path


def build_site(root: Path, tmp_path_factory, tiny_synth: Path, n: int = 8) -> dict[str, Path]:
    from tests.support.make_tiny_bundle import asset_copy

    from fashionsearchnet.app.cli import main

    bundle = asset_copy(tmp_path_factory)
    cat = root / "cat"
    cat.mkdir(parents=True)
    for i in range(n):
        shutil.copy(tiny_synth / "images" / f"{i:06d}.jpg", cat / f"{i}.jpg")
    gal = root / "gal"
    assert main(["index", str(bundle), str(cat), "--out", str(gal)]) == 0
    return {"bundle": bundle, "cat": cat, "gal": gal}
