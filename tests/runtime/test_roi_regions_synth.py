"""Region boxes from planted AAMs (the synthetic masks, downsampled to a conv5 grid) overlap the true regions."""
import cv2
import numpy as np
import pytest

from fashionsearchnet.data.synth import generate, synthetic_schema
from fashionsearchnet.runtime import roi
from fashionsearchnet.evaluation.localisation import (SYNTH_REGION_LABELS, box_coverage, box_iou, cell_box_to_pixels,
                                                   mask_box, mean_box_coverage, mean_box_iou, truth_boxes)


def test_box_helpers_by_hand():
    assert box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 1, 3, 3.0])) == pytest.approx(1 / 7)
    np.testing.assert_array_equal(cell_box_to_pixels(np.array([1, 0, 2, 3.0]), (4, 4), (64, 64)), [16, 0, 48, 64])
    m = np.zeros((5, 6), bool)
    m[1:3, 2:5] = True
    np.testing.assert_array_equal(mask_box(m), [2, 1, 5, 3])
    assert mask_box(np.zeros((3, 3), bool)) is None
    two = np.zeros((4, 8), bool)
    two[1:3, 0:2] = two[0:2, 5:8] = True  # two parts: whole box first, then each part
    assert [t.tolist() for t in truth_boxes(two)] == [[0, 0, 8, 3], [0, 1, 2, 3], [5, 0, 8, 2]]


def test_box_coverage_by_hand():
    m = np.zeros((8, 8), bool)
    m[2:4, 2:6] = True  # 8 pixels
    assert box_coverage(np.array([0, 0, 8, 8.0]), m) == 1.0  # a big box holds it all (its IoU would be 8/64)
    assert box_coverage(np.array([0, 0, 4, 8.0]), m) == 0.5  # columns 2-3 of 2-5
    assert box_coverage(np.array([6, 6, 8, 8.0]), m) == 0.0
    # mean over images, cell boxes on a 4x4 map of an 8x8 image (2 px per cell); region label 3
    masks = [np.where(m, 3, 0).astype(np.uint8), np.zeros((8, 8), np.uint8)]  # the second has no such region
    boxes = np.array([[[1, 1, 1, 1.0]], [[0, 0, 3, 3.0]]])  # cell (1,1) -> pixels [2,4) x [2,4): 4 of 8
    assert mean_box_coverage(boxes, masks, ["collar"], {"collar": (3,)}, (4, 4)) == {"collar": 0.5}


def test_region_boxes_of_planted_maps_overlap_the_planted_regions(tmp_path):
    out = generate(tmp_path / "d", 24, seed=7, size=64)
    masks = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((out / "masks").glob("*.png"))]
    assert len(masks) == 24
    grid = 13
    maps = np.zeros((len(masks), 3, grid, grid), np.float32)
    for i, m in enumerate(masks):
        frac = lambda labels: cv2.resize(np.isin(m, labels).astype(np.float32), (grid, grid),  # noqa: E731
                                         interpolation=cv2.INTER_AREA)
        maps[i, 0] = frac((3,))  # collar AAMs
        maps[i, 1] = frac((2,))  # sleeve AAMs
        maps[i, 2] = frac((1, 2, 3))  # category/colour/pattern AAMs light up the whole garment
    boxes = roi.region_boxes(maps, synthetic_schema())
    iou = mean_box_iou(boxes, masks, ["collar", "sleeve", "torso"], SYNTH_REGION_LABELS, (grid, grid))
    assert iou["collar"] > 0.4 and iou["sleeve"] > 0.3 and iou["torso"] > 0.5, iou
    # without subtracting collar and sleeve the torso box is the whole garment: a worse torso box
    whole = roi.attribute_boxes(maps[:, 2:3])
    iou_whole = mean_box_iou(whole, masks, ["torso"], SYNTH_REGION_LABELS, (grid, grid))
    assert iou["torso"] > iou_whole["torso"], (iou, iou_whole)
