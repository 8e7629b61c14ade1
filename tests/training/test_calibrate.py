"""Issue 17's calibration (training/calibrate.py): thresholds chosen on planted maps, region prototypes by hand,
the choice stored in the checkpoint and the bundle and read back, and runtime vs PyTorch parity of the
calibrated ROI step (non-default thresholds, upsampled maps, heads boxes != display boxes)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fashionsearchnet.runtime.roi_settings import RoiChoice, RoiSettings
from tests.support.schemas import four_attribute_region_schema


_schema = four_attribute_region_schema


def test_thresholds_are_chosen_where_the_box_fits_the_planted_part():
    """The collar AAM peaks (1.0) on the true collar and has a 0.3 plateau around it: at the paper's 0.2 the box
    is the plateau (IoU 0.11), from 0.3 on it is the collar itself (IoU 1)."""
    from fashionsearchnet.training.calibrate_roi import choose_roi

    sch = _schema()
    n, h = 6, 12
    aams = np.zeros((n, 4, h, h), np.float32)
    rmaps = np.zeros((n, 3, h, h), np.float32)
    masks = []
    for i in range(n):
        y, x = 2 + i % 3, 3 + i % 4
        aams[i, 1, y - 2:y + 4, x - 2:x + 4] = 0.3  # plateau 6x6 cells
        aams[i, 1, y:y + 2, x:x + 2] = 1.0  # the collar: 2x2 cells
        m = np.zeros((h * 8, h * 8), np.uint8)  # 8 px per cell
        m[y * 8:(y + 2) * 8, x * 8:(x + 2) * 8] = 3  # label 3 = collar
        masks.append(m)
    settings, report = choose_roi(aams, rmaps, sch, masks, thresholds=(0.1, 0.2, 0.3, 0.5), upsamples=(1,))
    assert settings.attributes["collar"] == 0.3  # the first threshold that cuts the plateau
    assert report["iou"]["collar"] == pytest.approx(1.0)
    assert report["iou_default"]["collar"] == pytest.approx(4 / 36, abs=1e-4)  # rounded to 4 digits
    assert settings.upsample == 1 and "sleeve" not in settings.attributes  # no sleeve pixels: nothing measured


def test_region_prototypes_are_means_of_region_reps_by_region_truth_by_hand():
    from fashionsearchnet.training.prototypes import compute_region_prototypes

    sch = _schema()  # pairs: collar:color, sleeve:color, torso:color
    reps = np.zeros((4, 3, 2), np.float32)
    reps[:, 0] = [[1, 0], [3, 0], [0, 5], [9, 9]]  # collar:color reps
    reps[:, 2] = [[2, 2], [4, 4], [6, 6], [8, 8]]  # torso reps
    region_labels = {"collar:color": np.array([0, 0, 1, -1])}  # no sleeve:color column, no torso column
    image = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])  # color: g g g r
    fallback = [np.full((2, 2), 7.0, np.float32) for _ in range(4)]
    out = compute_region_prototypes(reps, region_labels, image, sch, fallback)
    np.testing.assert_allclose(out["collar:color"], [[2, 0], [0, 5]])  # rows 0,1 -> r; row 2 -> g; row 3 unknown
    np.testing.assert_allclose(out["torso:color"], [[8, 8], [4, 4]])  # primary: image-level colour (r: row 3)
    assert "sleeve:color" not in out  # no truth column for a non-primary region: image-level fallback at search


@pytest.fixture(scope="module")
def calibrated(tiny_synth, tmp_path_factory):
    """An untrained tiny fsn checkpoint on the tiny synthetic catalogue (masks, region truth), calibrated."""
    from tests.support.tiny_runs import tiny_run

    from fashionsearchnet.app.cli import main

    root = tmp_path_factory.mktemp("cal")
    run = tiny_run(root / "run", tiny_synth)
    assert main(["calibrate", str(run), "--rows", "120", "--json", str(root / "cal.json")]) == 0
    return run, json.loads((root / "cal.json").read_text())


def test_calibration_is_stored_in_the_checkpoint_and_the_bundle_and_read_back(calibrated, tmp_path):
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.runtime.bundle import Bundle
    from fashionsearchnet.training.checkpoint import Checkpoint

    run, report = calibrated
    ck = Checkpoint.load(run / "fsn")
    assert ck.calibration["validation"] == {**report["validation"]} and report["validation"]["rows"] == 120
    want = report["roi"]["thresholds"]
    assert ck.roi_choice.display.attributes == want["attributes"] and ck.roi_choice.display.regions == want["regions"]
    assert ck.roi_choice.display.upsample == report["roi"]["upsample"]
    assert set(ck.region_prototypes) == {f"{r}:{a}" for r, a in ck.schema.region_pairs}
    export_run(run, tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert b.roi_choice == ck.roi_choice
    p = b.params
    for k, v in ck.region_prototypes.items():
        np.testing.assert_array_equal(p.region_prototypes[k], v)
    if ck.region_terms is not None:
        assert p.region_terms.weight == ck.region_terms["weight"]
        np.testing.assert_allclose(p.region_terms.pair_scales, ck.region_terms["pair_scales"])
    assert p.region_weight == ck.region_weight
    heads = report["region_heads"]
    assert heads["fit_samples"] == 2 * heads["fit_rows"] > 0  # each fit row as it is and mirrored (FIT_MIRRORED)


def test_old_bundle_keeps_the_paper_roi_step(tiny_bundle):
    from fashionsearchnet.runtime.bundle import Bundle
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    b = Bundle.open(tiny_bundle)
    assert b.roi_choice == RoiChoice() and b.roi_choice.heads.default == 0.2 and b.params.region_terms is None
    with FeatureExtractor(b, backend="ort-cpu") as fx:
        img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        f = fx.extract([img])
        bb = fx.backend.backbone(fx.preprocess([img])[0])
    from fashionsearchnet.runtime import roi
    ref = roi.all_boxes(bb["aams"], bb["region_maps"], b.schema)
    np.testing.assert_array_equal(np.concatenate([f.attr_boxes, f.region_boxes], 1), ref)


@pytest.mark.parametrize("heads_tight", [True, False], ids=["heads-tight", "heads-training-boxes"])
def test_runtime_equals_pytorch_with_calibrated_roi(tiny_synth, tmp_path, heads_tight):
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import Preprocessing, read_image
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.export.torch_reference import TorchExtractor
    from fashionsearchnet.runtime.extractor import FeatureExtractor
    from fashionsearchnet.training.checkpoint import Checkpoint, load_run
    from fashionsearchnet.training.extract import extract_arrays
    from tests.support.tiny_runs import tiny_run

    run = tiny_run(tmp_path / "run", tiny_synth)
    ck = Checkpoint.load(run / "fsn")
    tight = RoiSettings({"collar": 0.45, "color": 0.35, "category": 0.1}, {"torso": 0.3, "sleeve": 0.5}, 2)
    choice = RoiChoice(heads=tight if heads_tight else RoiSettings(), display=tight)
    dataclasses.replace(ck, roi=choice.to_dict()).save(run / "fsn" / "checkpoint.pt")
    export_run(run, tmp_path / "b")
    paths = [str(p) for p in load_dataset(tiny_synth).images[:8]]
    with FeatureExtractor(tmp_path / "b", backend="ort-cpu") as fx:
        assert fx.roi == choice
        f = fx.extract(paths, batch_size=3)
    model, meta = load_run(run / "fsn")
    assert meta["roi"] == choice
    pre = Preprocessing(meta["preset"].input_size)
    ref = extract_arrays(model, np.stack([pre.resize(read_image(p)) for p in paths]), pre, batch_size=4,
                         roi_choice=meta["roi"])
    np.testing.assert_array_equal(np.concatenate([f.attr_boxes, f.region_boxes], 1), ref["boxes"])
    assert (ref["boxes"] % 1 != 0).any()  # upsampled: fractional cell boxes
    tol = 1e-4 * max(1.0, float(np.abs(ref["attr_reps"]).max()))
    assert np.abs(f.attr_reps - ref["attr_reps"]).max() <= tol
    assert np.abs(f.region_reps - ref["region_reps"]).max() <= tol
    plain = extract_arrays(model, np.stack([pre.resize(read_image(p)) for p in paths]), pre, batch_size=4)
    # the heads pooled the calibrated boxes only when asked to
    assert np.array_equal(plain["attr_reps"], ref["attr_reps"]) != heads_tight
    g = TorchExtractor(run / "fsn").extract(paths, batch_size=4)["global_reps"]
    assert np.abs(f.global_reps - g).max() <= 1e-4 * max(1.0, float(np.abs(g).max()))


def test_calibrate_refuses_a_checkpoint_without_aam_boxes(tiny_synth, tmp_path, capsys):
    from fashionsearchnet.app.cli import main
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.checkpoint import Checkpoint
    from fashionsearchnet.training.presets import PRESETS

    Checkpoint.untrained(load_dataset(tiny_synth).schema, PRESETS["tiny"], "no_aam", 0, 0.3,
                         data=str(tiny_synth)).save(tmp_path / "no_aam" / "checkpoint.pt")
    assert main(["calibrate", str(tmp_path / "no_aam")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "method 'no_aam'" in err[0] and "RUN/fsn/checkpoint.pt" in err[0]


def test_results_of_the_query_item_are_dropped_by_hand():
    from fashionsearchnet.evaluation.protocol import Task
    from fashionsearchnet.training.calibrate import _exclude_same_item

    class DS:
        item_ids = ["a", "a", "b", None, "c", "a"]

    task = Task("part", np.array([0, 3]), [], np.zeros((2, 1)), np.zeros((2, 0)), (), np.arange(6))
    res = np.array([[1, 2, 5, 4], [3, 0, 2, 1]])
    got = _exclude_same_item(DS(), task, res, 3)
    np.testing.assert_array_equal(got, [[2, 4, 4], [3, 0, 2]])  # row 0: item a dropped, padded; row 3: no item


def test_vectorised_box_iou_equals_the_localisation_reference():
    from fashionsearchnet.training.calibrate_roi import box_ious, truth_table
    from fashionsearchnet.training.localisation import mean_box_iou

    rng = np.random.default_rng(0)
    masks = []
    for i in range(30):
        m = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(0, 50, 2)
        m[y:y + 10, x:x + 12] = 2
        if i % 3:
            m[5:9, 40:60] = 2  # a second part: the best of the whole region and each part counts
        if i % 5 == 0:
            m[:] = 0  # absent: left out of the mean
        masks.append(m)
    boxes = rng.uniform(0, 6, (30, 1, 4)).astype(np.float64)
    boxes[..., 2:] += boxes[..., :2]
    got = box_ious(boxes[:, 0], truth_table(masks, [(2,)])[0], (7, 7), np.array([m.shape for m in masks], float))
    assert np.isnan(got[::5]).all() and not np.isnan(got[1::5]).any()
    assert np.nanmean(got) == pytest.approx(mean_box_iou(boxes, masks, ["s"], {"s": (2,)}, (7, 7))["s"], rel=1e-9)


def test_a_torso_term_is_used_only_when_it_beats_none_by_a_point():
    from fashionsearchnet.training.calibrate import PRIMARY_MIN_GAIN, choose_primary_weight

    grid = [{"primary_weight": 0.0, "top1": 67.4}, {"primary_weight": 0.25, "top1": 68.0},
            {"primary_weight": 1.0, "top1": 66.0}]
    assert PRIMARY_MIN_GAIN == 1.0
    assert choose_primary_weight(grid) == 0.0  # +0.6: within the margin, fsn's own answer stays
    grid[2]["top1"] = 68.5
    assert choose_primary_weight(grid) == 1.0  # +1.1
    grid[1]["top1"] = 68.5
    assert choose_primary_weight(grid) == 0.25  # ties go to the smaller weight
