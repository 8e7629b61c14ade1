"""The region-search study's scripts: regional requests of the regional profile (small scale) and
evaluate_runs.py end to end on two tiny untrained runs."""
from __future__ import annotations

import json
import statistics

import pytest

from benchmarks.experiments.region_search import catalogue_pairs, evaluate_runs

SPLITS = (0.0, 0.8889, 0.1111)


def test_regional_profile_asks_many_answerable_collar_and_sleeve_requests(tmp_path):
    # 1,200 images (~1,070 gallery, ~130 queries): the 4,500-image catalogue has 423 sleeve / 448 collar pairs
    counts = {p: catalogue_pairs.pair_counts(catalogue_pairs.label_only(1200, 101, SPLITS, p, tmp_path / p))
              for p in ("basic", "regional")}
    part = counts["regional"]["region_part"]
    assert part["sleeve"] >= 80 and part["collar"] >= 80
    assert part["sleeve"] >= 5 * counts["basic"]["region_part"].get("sleeve", 0)
    assert part["own_item_only"] == 0.0  # region_part never keeps a pair only the query's own item answers
    assert "torso" not in part and set(counts["regional"]["region_primary"]) >= {"torso", "n"}
    reg = counts["regional"]["region"]
    assert reg["n"] == reg.get("torso", 0) + reg.get("sleeve", 0) + reg.get("collar", 0)
    assert counts["regional"]["region_primary"]["n"] == reg["torso"]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.synth import generate
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    root = tmp_path_factory.mktemp("region_search")
    data = generate(root / "heldout", 48, seed=101, size=64, splits=(0.0, 0.75, 0.25), profile="regional")
    schema = load_dataset(data).schema
    for seed in (0, 1):
        for m in ("attribute", "no_aam", "fsn"):
            Checkpoint.untrained(schema, PRESETS["tiny"], m, seed, 0.5).save(root / f"s{seed}" / m / "checkpoint.pt")
    return root, data


def test_evaluate_runs_end_to_end_on_tiny_runs(tiny_runs):
    root, data = tiny_runs
    out = root / "out"
    argv = ["--run", f"0={root / 's0'}", "--run", f"1={root / 's1'}", "--data", str(data), "--work",
            str(root / "work"), "--out", str(out)]
    assert evaluate_runs.main(argv) == 0
    d = json.loads(out.with_suffix(".json").read_text())
    per = d["results"]
    for s in ("0", "1"):
        assert set(per[s]) == {"manipulation", "region", "region_part", "region_primary", "region_specificity",
                               "localisation"}
        assert set(per[s]["manipulation"]) == {"attribute", "no_aam", "fsn", "fsn_region"}
        assert set(per[s]["region_specificity"]) == {"no_aam", "fsn"}  # attribute has no region representations
        assert per[s]["localisation"]["fsn"]["n"] == len(load_gallery(data))
    # a target row from the per-seed results by hand: manipulation Top-1 fsn_region - fsn, and fsn - no_aam Top-30
    t = d["targets"]
    diffs = [per[s]["manipulation"]["fsn_region"]["top1"] - per[s]["manipulation"]["fsn"]["top1"] for s in ("0", "1")]
    assert t["manipulation Top-1, fsn_region − fsn"]["values"] == pytest.approx(diffs)
    assert t["manipulation Top-1, fsn_region − fsn"]["median"] == pytest.approx(statistics.median(diffs))
    dn = [per[s]["manipulation"]["fsn"]["top30"] - per[s]["manipulation"]["no_aam"]["top30"] for s in ("0", "1")]
    assert t["manipulation Top-30, fsn − no_aam"]["values"] == pytest.approx(dn)
    loc = [per[s]["localisation"]["fsn"]["color"] for s in ("0", "1")]
    assert t["localisation IoU color (fsn)"]["values"] == pytest.approx(loc)
    assert t["localisation IoU color (fsn)"]["met"] == (statistics.median(loc) >= 0.6)
    m = d["summary"]["methods"]["region_part/fsn_region/top5"]
    assert m["values"] == [per[s]["region_part"]["fsn_region"]["top5"] for s in ("0", "1")]
    md = out.with_suffix(".md").read_text()
    assert "| region_part Top-5, fsn_region / fsn |" in md and "Command: `" in md and "Machine: " in md
    assert "| region_primary | fsn_region |" in md
    # the eval JSONs are reused: a second call evaluates nothing again
    cached = sorted((root / "work").glob("*-regioneval.json"))
    assert len(cached) == 2
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert evaluate_runs.main(argv) == 0
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def load_gallery(data):
    from fashionsearchnet.data.dataset import load_dataset

    return load_dataset(data).indices("gallery")


def test_bad_run_argument_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate_runs.main(["--run", "zero", "--data", str(tmp_path)])
    assert "SEED=RUN_FOLDER" in capsys.readouterr().err
