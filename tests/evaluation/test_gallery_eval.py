"""fsn eval BUNDLE DATA (runtime + gallery) gives the same Top-K as the PyTorch reference path on a tiny set."""
from __future__ import annotations

import json

import pytest

from fashionsearchnet.app.cli import main
from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.data.synth import synthetic_schema


@pytest.fixture(scope="module")
def run_and_bundle(tmp_path_factory):
    """A randomly initialised tiny-preset fsn checkpoint on the synthetic schema, and its exported bundle."""
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    root = tmp_path_factory.mktemp("evalrun")
    Checkpoint.untrained(synthetic_schema(), PRESETS["tiny"], "fsn", 3, 0.3).save(root / "run" / "fsn" / "checkpoint.pt")
    export_run(root / "run", root / "bundle", precision="fp32", method="fsn")
    return root / "run", root / "bundle"


def _resplit(src, dst):
    """tiny_synth with every row in the gallery or the query split (3:1), so the protocols have queries."""
    import csv
    import shutil

    dst.mkdir()
    for p in src.iterdir():
        if p.name != "attributes.csv":
            (dst / p.name).symlink_to(p) if p.is_dir() else shutil.copy(p, dst / p.name)
    with open(src / "attributes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(dst / "attributes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow(dict(r, split="query" if i % 4 == 0 else "gallery"))
    return dst


@pytest.mark.slow
def test_bundle_eval_matches_the_pytorch_reference(run_and_bundle, tiny_synth, tmp_path):
    run, bundle = run_and_bundle
    tiny_synth = _resplit(tiny_synth, tmp_path / "data")
    protos = "query,manipulation,region,adde"
    assert main(["eval", str(run), str(tiny_synth), "--json", str(tmp_path / "ref.json"), "--protocols", protos,
                 "--max-queries", "30"]) == 0
    assert main(["eval", str(bundle), str(tiny_synth), "--json", str(tmp_path / "rt.json"), "--protocols", protos,
                 "--max-queries", "30", "--backend", "ort"]) == 0
    ref = json.loads((tmp_path / "ref.json").read_text())
    got = json.loads((tmp_path / "rt.json").read_text())
    assert set(got) == set(ref)
    compared = 0
    for proto, methods in ref.items():
        for m in ("fsn", "fsn_region"):
            assert got[proto][m]["n"] == methods[m]["n"]
            if methods[m]["n"] == 0:
                continue
            for key, val in methods[m].items():
                if key.startswith("top"):
                    assert abs(got[proto][m][key] - val) <= 0.5, (proto, m, key, got[proto][m][key], val)
                    compared += 1
    assert compared >= 3 * 2 * 6, ref  # at least three protocols with queries, both methods, six Ks
    assert len(load_dataset(tiny_synth)) == 240
