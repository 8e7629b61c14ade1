"""FeatureExtractor (ONNX Runtime) equals the PyTorch reference path (training/extract.py) on the tiny preset, for
the tiny model exported at test time (fsn and no_aam). The torch-free FeatureExtractor tests are in tests/runtime.

Tolerance: features within 1e-4 x max(1, max|reference|) (fp32 ONNX Runtime vs PyTorch CPU); boxes equal.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fashionsearchnet.runtime.extractor import STAGES, FeatureExtractor

TOL = 1e-4


def _close(got, ref, tol=TOL):
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.abs(got - ref).max() <= tol * scale, (np.abs(got - ref).max(), scale)


def _reference(run, rgbs):
    from fashionsearchnet.data.preprocess import Preprocessing
    from fashionsearchnet.training.checkpoint import load_run
    from fashionsearchnet.training.extract import extract_arrays

    model, meta = load_run(next(run.glob("*/checkpoint.pt")))
    pre = Preprocessing(meta["preset"].input_size)
    resized = np.stack([pre.resize(x) for x in rgbs])
    return model, extract_arrays(model, resized, pre, batch_size=4)


def test_equals_pytorch_reference_on_catalogue_images(tiny_export, tiny_synth):
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import read_image

    ds = load_dataset(tiny_synth) if not hasattr(tiny_synth, "images") else tiny_synth
    paths = [str(p) for p in ds.images[:10]]
    bundle, run = tiny_export()
    model, ref = _reference(run, [read_image(p) for p in paths])
    with FeatureExtractor(bundle, backend="ort-cpu") as fx:
        f = fx.extract(paths, batch_size=3)  # batch 3, 3, 3, 1: none equals the export batch (2)
    A = len(fx.schema.attributes)
    np.testing.assert_array_equal(np.concatenate([f.attr_boxes, f.region_boxes], 1), ref["boxes"])
    _close(f.probs, ref["probs"])
    _close(f.attr_reps, ref["attr_reps"])
    _close(f.region_reps, ref["region_reps"])
    with torch.no_grad():
        g_ref = model.global_rep(torch.from_numpy(ref["attr_reps"]), 0).numpy()
    _close(f.global_reps, g_ref)
    assert f.attr_boxes.shape == (10, A, 4) and f.aams.shape[:2] == (10, A)
    assert f.region_maps.shape[1] == len(fx.schema.regions)
    assert set(f.timings_ms) == set(STAGES) and all(v >= 0 for v in f.timings_ms.values())


@pytest.mark.slow
def test_no_aam_bundle_uses_whole_map_boxes(tiny_export):
    path, run = tiny_export(method="no_aam")
    img = np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with FeatureExtractor(path, backend="ort") as f:
        feats = f.extract([img, img])
    assert np.all(feats.attr_boxes == np.array([0, 0, 6, 6], np.float32))
    assert np.all(feats.region_boxes == np.array([0, 0, 6, 6], np.float32))
    _, ref = _reference(run, [img, img])
    np.testing.assert_array_equal(np.concatenate([feats.attr_boxes, feats.region_boxes], 1), ref["boxes"])
    _close(feats.attr_reps, ref["attr_reps"])


def test_bench_measures_torch_eager_beside_onnx_runtime(tiny_export, tmp_path):
    import json

    from fashionsearchnet.app.cli import main
    from tests.support.bench_result import check_bench_result

    bundle, run = tiny_export()
    out = tmp_path / "r.json"
    rc = main(["bench", str(bundle), "--json", str(out), "--runs", "8", "--warmup", "1", "--batches", "2,4",
               "--backends", "ort-cpu,trt,torch-eager", "--checkpoint", str(run / "fsn" / "checkpoint.pt")])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res) == {"ort-cpu", "torch-eager"}  # trt skipped (not installed), the JSON holds measured ones
    check_bench_result(res)
    md = (tmp_path / "r.md").read_text()
    assert "| torch-eager |" in md
    # like with like: by default every backend runs the runtime's default thread count, and the JSON says so
    assert res["ort-cpu"]["threads"] == res["torch-eager"]["threads"] == 1 and "1 intra-op thread(s)" in md


def test_bench_gives_torch_the_same_threads_as_onnx_runtime(tiny_export, tmp_path):
    import json

    import torch

    from fashionsearchnet.app.cli import main

    bundle, run = tiny_export()
    out = tmp_path / "r.json"
    before = torch.get_num_threads()
    try:
        rc = main(["bench", str(bundle), "--json", str(out), "--runs", "3", "--warmup", "1", "--batches", "2",
                   "--backends", "ort-cpu,torch-eager", "--threads", "2", "--checkpoint",
                   str(run / "fsn" / "checkpoint.pt")])
        assert rc == 0 and torch.get_num_threads() == 2  # the torch row really ran with 2
    finally:
        torch.set_num_threads(before)
    res = json.loads(out.read_text())
    assert res["ort-cpu"]["threads"] == res["torch-eager"]["threads"] == 2
