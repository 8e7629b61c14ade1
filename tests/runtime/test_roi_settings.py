"""Per-map thresholds and CAM upsampling in the ROI step (runtime/roi.py, runtime/roi_settings.py); no torch."""
import cv2
import numpy as np
import pytest

from fashionsearchnet.errors import UsageError
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.roi_settings import RoiChoice, RoiSettings
from tests.support.schemas import four_attribute_region_schema


_schema = four_attribute_region_schema


def test_upsample_matrix_is_opencv_bilinear_resize():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(7, 9)).astype(np.float32)
    for k in (2, 3, 4):
        ref = cv2.resize(m, (9 * k, 7 * k), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(roi.upsample_maps(m, k), ref, atol=1e-5)


def test_upsampled_boxes_map_back_to_fractional_cells_by_hand():
    # upsampled pixels 2..5 of a 2x map span cells [1, 3) -> inclusive cell box 1 .. 2 (=(5+1)/2 - 1)
    b = np.array([[2, 4, 5, 7]], np.float32)
    np.testing.assert_allclose(roi.cells_from_upsampled(b, 2), [[1.0, 2.0, 2.0, 3.0]])
    # 4x: pixels 1..2 span [0.25, 0.75) of a cell -> [0.25, -0.25]: a quarter-cell box, pixel box [0.25s, 0.75s)
    np.testing.assert_allclose(roi.cells_from_upsampled(np.array([[1, 1, 2, 2]], np.float32), 4),
                               [[0.25, 0.25, -0.25, -0.25]])
    # the whole upsampled map is the whole map
    np.testing.assert_allclose(roi.cells_from_upsampled(np.array([[0, 0, 59, 59]], np.float32), 4), [[0, 0, 14, 14]])


def test_per_map_thresholds_equal_one_call_per_threshold():
    rng = np.random.default_rng(1)
    sch = _schema()
    aams = rng.uniform(size=(3, 4, 9, 9)).astype(np.float32) ** 3
    rmaps = rng.uniform(size=(3, 3, 9, 9)).astype(np.float32) ** 3
    th = np.array([0.1, 0.3, 0.5, 0.7, 0.25, 0.45, 0.6], np.float32)
    got = roi.all_boxes(aams, rmaps, sch, th)
    for k in range(4):
        np.testing.assert_array_equal(got[:, k], roi.attribute_boxes(aams[:, k:k + 1], float(th[k]))[:, 0])
    # regions: every region at its own threshold, the torso minus the collar and sleeve masks at theirs
    masks = np.stack([roi.threshold_masks(rmaps[:, i], float(th[4 + i])) for i in range(3)], 1)
    masks[:, 2] &= ~masks[:, 0] & ~masks[:, 1]
    np.testing.assert_array_equal(got[:, 4:], roi.largest_component_boxes(masks.reshape(9, 9, 9)).reshape(3, 3, 4))


def test_upsampled_step_equals_thresholding_the_resized_maps():
    rng = np.random.default_rng(2)
    sch = _schema()
    aams = rng.uniform(size=(2, 4, 7, 7)).astype(np.float32) ** 2
    rmaps = rng.uniform(size=(2, 3, 7, 7)).astype(np.float32) ** 2
    got = roi.all_boxes(aams, rmaps, sch, 0.4, upsample=2)
    big = np.stack([[cv2.resize(m, (14, 14), interpolation=cv2.INTER_LINEAR) for m in b] for b in aams])
    ref = roi.cells_from_upsampled(roi.attribute_boxes(big.astype(np.float32), 0.4), 2)
    np.testing.assert_allclose(got[:, :4], ref, atol=1e-6)


def test_settings_round_trip_and_old_manifests_keep_the_paper_step():
    old = RoiChoice.from_dict({"aam_threshold": 0.2, "region_class_threshold": 0.1})
    assert old.same and old.heads.is_default and old.display.upsample == 1
    tight = RoiSettings({"collar": 0.45}, {"torso": 0.3}, 4)  # the collar attribute's AAM, the torso region map
    c = RoiChoice(heads=RoiSettings(), display=tight)
    back = RoiChoice.from_dict({"aam_threshold": 0.2, **c.to_dict()})
    assert back == c and not back.same
    np.testing.assert_allclose(back.display.vector(_schema()), [0.2, 0.45, 0.2, 0.2, 0.2, 0.2, 0.3])
    with pytest.raises(UsageError, match="hat"):
        RoiSettings({}, {"hat": 0.3}).vector(_schema())
    with pytest.raises(UsageError, match="upsample"):
        RoiSettings({}, {}, 0)
    with pytest.raises(UsageError, match=r"collar = 1.5: must be a number in \[0, 1\)"):
        RoiChoice.from_dict({"thresholds": {"attributes": {"collar": 1.5}}})
