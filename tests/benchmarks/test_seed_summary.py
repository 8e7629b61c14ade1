"""benchmarks/experiments/seeds/seed_summary.py: per-seed evaluation JSONs (both shapes) -> medians, ranges, paired differences and
region ratios, checked against numbers worked out by hand."""
from __future__ import annotations

import json

import pytest

from benchmarks._seeds import cell
from benchmarks.experiments.seeds import seed_summary


def _res(t30: dict[str, float], region: tuple[float, float]) -> dict:
    row = lambda v: {"top1": v / 2, "top10": v - 5, "top30": v, "n": 7}  # noqa: E731
    return {"manipulation": {m: row(v) for m, v in t30.items()},
            "region": {"fsn": row(region[0]), "fsn_region": row(region[1]), "attribute": row(50.0),
                       "no_aam": row(40.0)}}


def test_two_seeds_in_both_json_shapes(tmp_path):
    a = tmp_path / "heldout.json"  # fsn eval / heldout_eval shape
    a.write_text(json.dumps(_res({"attribute": 90.0, "no_aam": 80.0, "fsn": 96.0, "fsn_region": 96.0},
                                 (40.0, 60.0))))
    b = tmp_path / "train_methods.json"  # train_methods shape
    b.write_text(json.dumps({"synthetic": {"results": _res({"attribute": 86.0, "no_aam": 88.0, "fsn": 94.0,
                                                            "fsn_region": 94.0}, (50.0, 55.0))}}))
    out = tmp_path / "s"
    assert seed_summary.main(["--run", f"0={a}", "--run", f"1={b}", "--protocols", "manipulation,region,item",
                              "--out", str(out)]) == 0
    d = json.loads(out.with_suffix(".json").read_text())
    m, diff = d["summary"]["methods"], d["summary"]["differences"]
    assert m["manipulation/fsn/top30"] == {"median": 95.0, "min": 94.0, "max": 96.0, "values": [96.0, 94.0]}
    assert m["manipulation/attribute/top1"]["median"] == pytest.approx(44.0)  # (45 + 43) / 2
    # paired: fsn - no_aam = +16 (seed 0), +6 (seed 1)
    assert diff["manipulation/fsn-no_aam/top30"]["values"] == [16.0, 6.0]
    assert diff["manipulation/fsn-attribute/top10"]["median"] == pytest.approx(7.0)  # (6 + 8) / 2
    assert d["fsn_region_over_fsn_top30"]["region"] == pytest.approx([1.5, 1.1])
    assert "item/fsn/top30" not in m  # a protocol missing from the inputs is left out, not invented
    md = out.with_suffix(".md").read_text()
    assert "| manipulation | fsn − no_aam | 5.5 (3.0 to 8.0) | 11.0 (6.0 to 16.0) | 11.0 (6.0 to 16.0) |" in md
    assert "seed 0 1.50x, seed 1 1.10x" in md


def test_bad_run_argument_and_unreadable_file(tmp_path):
    with pytest.raises(SystemExit):
        seed_summary.main(["--run", "x.json", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="cannot read an evaluation JSON"):
        seed_summary.main(["--run", f"0={tmp_path / 'missing.json'}", "--out", str(tmp_path / "o")])


def test_a_negative_range_reads_without_a_dash_between_minus_signs():
    assert cell({"median": -4.8, "min": -5.1, "max": -4.5}) == "-4.8 (-5.1 to -4.5)"
    assert cell({"median": 0.4, "min": -1.2, "max": 1.9}) == "0.4 (-1.2 to 1.9)"
