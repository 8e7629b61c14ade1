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


def _drop(src, dst, columns=(), folders=()):
    """A copy of the catalogue ``src`` without the given attributes.csv columns / folders (images symlinked)."""
    import csv
    import shutil

    dst.mkdir()
    for p in src.iterdir():
        if p.name in folders or p.name in ("attributes.csv", "schema.json"):
            continue
        (dst / p.name).symlink_to(p) if p.is_dir() else shutil.copy(p, dst / p.name)
    with open(src / "attributes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [c for c in rows[0] if c not in columns]
    with open(dst / "attributes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keep, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return dst


@pytest.mark.parametrize("proto, drop, words", [
    ("region_part", "regions", ("no region truth", "category, collar, sleeve, color, pattern")),
    ("region_primary", "regions", ("no region truth",)),
    ("region_specificity", "regions", ("no region truth",)),
    ("localisation", "masks", ("no masks/ folder", "attributes.csv", "images/")),
])
def test_eval_asked_for_what_the_catalogue_lacks_is_a_one_line_error(run_and_bundle, tiny_synth, tmp_path, capsys,
                                                                      proto, drop, words):
    from fashionsearchnet.data.synth import REGION_COLUMNS

    run, _ = run_and_bundle
    data = _drop(tiny_synth, tmp_path / "data", columns=REGION_COLUMNS if drop == "regions" else (),
                 folders=("masks",) if drop == "masks" else ())
    assert main(["eval", str(run), str(data), "--json", str(tmp_path / "r.json"), "--protocols", proto]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fsn eval: error: --protocols " + proto)
    assert all(w in err for w in words), err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_bundle_eval_reports_the_region_protocols_and_figures_like_the_reference(run_and_bundle, tiny_synth, tmp_path):
    run, bundle = run_and_bundle
    data = _resplit(tiny_synth, tmp_path / "data")
    assert main(["eval", str(run), str(data), "--json", str(tmp_path / "ref.json"), "--max-queries", "20"]) == 0
    assert main(["eval", str(bundle), str(data), "--json", str(tmp_path / "rt.json"), "--max-queries", "20",
                 "--backend", "ort"]) == 0
    ref = json.loads((tmp_path / "ref.json").read_text())
    got = json.loads((tmp_path / "rt.json").read_text())
    # the defaults: every protocol and figure this catalogue (region truth, item ids, masks) supports
    assert set(ref) == set(got) == {"query", "manipulation", "region", "item", "adde", "region_part",
                                    "region_primary", "region_specificity", "localisation"}
    assert got["region_part"]["fsn"]["n"] == ref["region_part"]["fsn"]["n"]
    spec_r, spec_g = ref["region_specificity"]["fsn"], got["region_specificity"]["fsn"]
    assert spec_r["n"] == spec_g["n"] > 0 and spec_r["prototypes"] == spec_g["prototypes"]
    for key in ("collar:color", "sleeve:color"):
        assert abs(spec_r[key] - spec_g[key]) <= 10.0, (key, spec_r, spec_g)
    loc_r, loc_g = ref["localisation"]["fsn"], got["localisation"]["fsn"]
    assert loc_r["n"] == loc_g["n"] == len(load_dataset(data).indices("gallery"))
    for key in ("category", "collar", "sleeve", "color", "region:torso"):
        assert abs(loc_r[key] - loc_g[key]) <= 0.05, (key, loc_r[key], loc_g[key])
