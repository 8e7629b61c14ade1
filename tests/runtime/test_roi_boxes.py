"""runtime/roi.py: planted blobs give their bounding box; largest component; torso minus collar/sleeve."""
import numpy as np
import pytest

from fashionsearchnet.runtime import roi
from tests.support.schemas import four_attribute_region_schema


_schema = four_attribute_region_schema


def test_planted_blob_gives_its_bounding_box():
    m = np.zeros((1, 2, 9, 11), np.float32)
    m[0, 0, 2:5, 3:8] = 1.0  # rows 2..4, cols 3..7
    m[0, 0, 3, 5] = 4.0  # peak inside; 0.2*4 = 0.8 < 1 keeps the blob
    m[0, 1, 6, 1] = 2.0  # single cell
    boxes = roi.attribute_boxes(m)
    assert boxes.dtype == np.float32 and boxes.shape == (1, 2, 4)
    np.testing.assert_array_equal(boxes[0, 0], [3, 2, 7, 4])
    np.testing.assert_array_equal(boxes[0, 1], [1, 6, 1, 6])


def test_threshold_is_twenty_percent_of_max_and_largest_component_wins():
    m = np.zeros((1, 1, 10, 10), np.float32)
    m[0, 0, 0, 0] = 10.0  # the peak, 1 cell
    m[0, 0, 5:8, 5:9] = 2.5  # 12 cells, above 2.0 -> largest component
    m[0, 0, 0:3, 6:9] = 1.9  # below 20% of 10 -> ignored
    np.testing.assert_array_equal(roi.attribute_boxes(m)[0, 0], [5, 5, 8, 7])
    m[0, 0, 5:8, 5:9] = 2.0  # exactly 20%: not above the threshold -> only the peak is left
    np.testing.assert_array_equal(roi.attribute_boxes(m)[0, 0], [0, 0, 0, 0])


def test_diagonal_cells_are_connected_eight_way():
    m = np.zeros((1, 1, 6, 6), np.float32)
    for i in range(4):
        m[0, 0, i, i] = 1.0  # a diagonal line: one 8-connected component of 4 cells
    m[0, 0, 5, 0] = m[0, 0, 5, 1] = m[0, 0, 4, 0] = 1.0  # 3 cells
    np.testing.assert_array_equal(roi.attribute_boxes(m)[0, 0], [0, 0, 3, 3])


def test_empty_or_negative_map_gives_whole_map():
    m = -np.ones((2, 1, 5, 7), np.float32)
    m[1] = 0
    np.testing.assert_array_equal(roi.attribute_boxes(m), np.broadcast_to([0, 0, 6, 4], (2, 1, 4)))
    np.testing.assert_array_equal(roi.full_boxes(2, 3, 5, 7), np.broadcast_to([0, 0, 6, 4], (2, 3, 4)))


def test_batched_labelling_equals_one_call_per_map():
    rng = np.random.default_rng(0)
    for h, w in ((7, 7), (13, 13), (5, 9), (1, 4)):
        maps = rng.normal(size=(40, h, w)).astype(np.float32)
        maps[::7] = rng.integers(0, 2, size=maps[::7].shape)  # exact ties between equal blobs
        masks = roi.threshold_masks(maps, 0.2)
        np.testing.assert_array_equal(roi.largest_component_boxes(masks), roi.boxes_reference(masks))


def test_torso_minus_collar_and_sleeve():
    s = _schema()
    r = np.zeros((1, 3, 8, 8), np.float32)
    r[0, 0, 0:2, 1:6] = 1.0  # collar at the top
    r[0, 1, 2:8, 0:2] = 1.0  # sleeve on the left
    r[0, 2, 0:8, 0:6] = 1.0  # torso map overlapping both
    boxes = roi.region_boxes(r, s)
    np.testing.assert_array_equal(boxes[0, 0], [1, 0, 5, 1])
    np.testing.assert_array_equal(boxes[0, 1], [0, 2, 1, 7])
    # torso mask left: rows 0..1 col 0 (2 cells) and rows 2..7 cols 2..5 (24 cells) -> the larger one
    np.testing.assert_array_equal(boxes[0, 2], [2, 2, 5, 7])
    masks = roi.region_masks(r, s)
    assert not (masks[0, 2] & masks[0, 0]).any() and not (masks[0, 2] & masks[0, 1]).any()
    # an empty sleeve map subtracts nothing (and its own box is the whole map)
    r[0, 1] = 0
    boxes = roi.region_boxes(r, s)
    np.testing.assert_array_equal(boxes[0, 1], [0, 0, 7, 7])
    np.testing.assert_array_equal(boxes[0, 2], [0, 0, 5, 7])  # col 0 joins the rest again
    # all of the torso covered by collar -> empty -> whole map
    r2 = np.zeros((1, 3, 4, 4), np.float32)
    r2[0, 0] = 1.0
    r2[0, 2, 1:3, 1:3] = 1.0
    np.testing.assert_array_equal(roi.region_boxes(r2, s)[0, 2], [0, 0, 3, 3])


def test_all_boxes_concatenates_attribute_and_region_boxes():
    s = _schema()
    rng = np.random.default_rng(1)
    aams = rng.normal(size=(3, 4, 7, 7)).astype(np.float32)
    rm = rng.normal(size=(3, 3, 7, 7)).astype(np.float32)
    both = roi.all_boxes(aams, rm, s)
    np.testing.assert_array_equal(both[:, :4], roi.attribute_boxes(aams))
    np.testing.assert_array_equal(both[:, 4:], roi.region_boxes(rm, s))


def test_bad_shapes_raise():
    from fashionsearchnet.errors import UsageError
    with pytest.raises(UsageError, match="schema defines 3 regions"):
        roi.region_boxes(np.zeros((1, 2, 4, 4), np.float32), _schema())
    with pytest.raises(UsageError, match=r"\(B, n, h, w\)"):
        roi.attribute_boxes(np.zeros((4, 4), np.float32))
