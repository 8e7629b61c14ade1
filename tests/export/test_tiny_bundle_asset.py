"""The checked-in tiny bundle (tests/support/assets/tiny_bundle) cannot go stale: its files match the recorded
sha256 list, and the same model exported with torch now has the same manifest (bar creation time, run path and
file digests), the same params and the same outputs. If this fails, the exporter changed: regenerate the asset
with ``python -m tests.support.make_tiny_bundle`` and commit it."""
from __future__ import annotations

import json

import numpy as np

from fashionsearchnet.runtime.extractor import FeatureExtractor
from tests.support import make_tiny_bundle as tiny

STALE = f"the checked-in tiny bundle is stale: regenerate it with `{tiny.COMMAND}`"
VOLATILE = {"created", "run", "files", "parity"}  # when and from where it was exported; ONNX bytes; float noise


def test_asset_files_match_the_recorded_sha256_and_stay_small():
    assert tiny.file_digests(tiny.ASSET) == tiny.recorded_digests()
    assert set(tiny.recorded_digests()) == {"manifest.json", "backbone.onnx", "heads.onnx", "params.npz"}
    assert sum(p.stat().st_size for p in tiny.ASSET.iterdir()) < 1_000_000


def test_a_changed_asset_is_refused_before_any_test_uses_it(tmp_path, tmp_path_factory, monkeypatch):
    import shutil

    import pytest

    bad = tmp_path / "tiny_bundle"
    shutil.copytree(tiny.ASSET, bad)
    data = bytearray((bad / "params.npz").read_bytes())
    data[-100] ^= 1
    (bad / "params.npz").write_bytes(bytes(data))
    monkeypatch.setattr(tiny, "ASSET", bad)
    with pytest.raises(AssertionError, match="regenerate both with `python -m tests.support.make_tiny_bundle`"):
        tiny.asset_copy(tmp_path_factory)


def test_a_fresh_export_matches_the_asset(tiny_export, tiny_bundle):
    fresh, _ = tiny_export()
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in tiny_bundle.iterdir()), STALE
    a = json.loads((tiny_bundle / "manifest.json").read_text())
    b = json.loads((fresh / "manifest.json").read_text())
    assert set(a) == set(b), STALE
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}, STALE
    assert set(a["files"]) == set(b["files"]) and set(a["parity"]) == set(b["parity"]), STALE
    assert a["run"]["method"] == b["run"]["method"] and a["run"]["preset"] == b["run"]["preset"], STALE
    with np.load(tiny_bundle / "params.npz") as pa, np.load(fresh / "params.npz") as pb:
        assert sorted(pa.files) == sorted(pb.files), STALE
        for k in pa.files:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=STALE)
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 255, (80 + 7 * i, 60, 3), dtype=np.uint8) for i in range(4)]
    with FeatureExtractor(tiny_bundle, backend="ort-cpu") as fa, FeatureExtractor(fresh, backend="ort-cpu") as fb:
        xa, xb = fa.extract(imgs), fb.extract(imgs)
    np.testing.assert_array_equal(xa.attr_boxes, xb.attr_boxes, err_msg=STALE)
    np.testing.assert_array_equal(xa.region_boxes, xb.region_boxes, err_msg=STALE)
    for name in ("probs", "attr_reps", "region_reps", "global_reps", "aams", "region_maps"):
        np.testing.assert_allclose(getattr(xa, name), getattr(xb, name), rtol=1e-5, atol=1e-6, err_msg=STALE)
