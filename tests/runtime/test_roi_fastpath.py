"""runtime/roi.py fast paths: all_boxes (one threshold pass, in-place subtraction, loop reduction of few
components) equals the composition of the plain functions and one connectedComponents call per map."""
import cv2
import numpy as np
import pytest

from fashionsearchnet.data.schema import Attribute, Region, Schema
from fashionsearchnet.runtime import roi


def _schema(chain: bool = False):
    regions = [Region("collar", ("collar",), ("color",)), Region("sleeve", ("sleeve",), ("color",)),
               Region("torso", ("category", "color"), ("color",), ("collar", "sleeve"), True)]
    if chain:  # a subtracted region that itself subtracts: raw masks must be used, not the changed ones
        regions[1] = Region("sleeve", ("sleeve",), ("color",), ("collar",))
    return Schema(
        attributes=(Attribute("category", ("a", "b")), Attribute("collar", ("x", "y")),
                    Attribute("sleeve", ("s", "l")), Attribute("color", ("r", "g")), Attribute("pattern", ("p", "q"))),
        regions=tuple(regions),
    )


def _maps(rng, b, k, h, w, kind):
    if kind == "smooth":  # CAM-like: few components per map
        x = rng.normal(size=(b * k, h, w)).astype(np.float32)
        return (np.stack([cv2.GaussianBlur(m, (0, 0), 1.5) for m in x]) + 0.05).reshape(b, k, h, w)
    if kind == "noise":  # many components (the vectorised reduction at larger batches)
        return rng.normal(size=(b, k, h, w)).astype(np.float32)
    m = rng.integers(0, 2, size=(b, k, h, w)).astype(np.float32)  # exact ties between equal blobs
    m[:, 1] = -1.0  # max < 0: whole map
    m[0, 2] = 0.0  # max == 0: whole map
    return m


def _reference(aams, rmaps, schema, thresh):
    b, a, h, w = aams.shape
    masks = np.concatenate([roi.threshold_masks(aams, thresh), roi.region_masks(rmaps, schema, thresh)], 1)
    return roi.boxes_reference(masks.reshape(-1, h, w)).reshape(b, masks.shape[1], 4)


@pytest.mark.parametrize("kind", ["smooth", "noise", "ties"])
@pytest.mark.parametrize("chain", [False, True])
def test_all_boxes_equals_per_map_reference(kind, chain):
    rng = np.random.default_rng(len(kind) + chain)
    schema = _schema(chain)
    for b, h, w in ((1, 15, 15), (3, 7, 7), (16, 15, 15), (2, 5, 9)):
        aams, rmaps = _maps(rng, b, 5, h, w, kind), _maps(rng, b, 3, h, w, kind)
        for thresh in (0.2, 0.0, 0.7, 1.0, 1.5, -0.3):
            got = roi.all_boxes(aams, rmaps, schema, thresh)
            np.testing.assert_array_equal(got, roi.all_boxes(aams, rmaps, schema, thresh, roi.subtract_plan(schema)))
            assert got.dtype == np.float32 and got.shape == (b, 8, 4)
            np.testing.assert_array_equal(got, _reference(aams, rmaps, schema, thresh), err_msg=f"{kind} {b} {thresh}")


def test_loop_and_vectorised_reductions_agree(monkeypatch):
    rng = np.random.default_rng(3)
    masks = roi.threshold_masks(_maps(rng, 1, 60, 9, 9, "noise")[0], 0.2)
    masks[5] = False  # an empty map in between
    want = roi.boxes_reference(masks)
    for limit in (0, 10**9):  # force the vectorised path, then the loop
        monkeypatch.setattr(roi, "_LOOP_MAX", limit)
        np.testing.assert_array_equal(roi.largest_component_boxes(masks), want)
    assert roi.largest_component_boxes(masks[:0]).shape == (0, 4)


def test_all_boxes_does_not_change_its_inputs():
    rng = np.random.default_rng(4)
    aams, rmaps = _maps(rng, 2, 5, 15, 15, "smooth"), _maps(rng, 2, 3, 15, 15, "smooth")
    a0, r0 = aams.copy(), rmaps.copy()
    roi.all_boxes(aams, rmaps, _schema())
    np.testing.assert_array_equal(aams, a0)
    np.testing.assert_array_equal(rmaps, r0)


def test_region_maps_of_another_size_raise():
    from fashionsearchnet.errors import UsageError

    with pytest.raises(UsageError, match="region_maps"):
        roi.all_boxes(np.zeros((1, 5, 7, 7), np.float32), np.zeros((1, 3, 6, 7), np.float32), _schema())
    with pytest.raises(UsageError, match="regions"):
        roi.all_boxes(np.zeros((1, 5, 7, 7), np.float32), np.zeros((1, 2, 7, 7), np.float32), _schema())
