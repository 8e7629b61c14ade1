"""region_specificity on planted region representations and prototypes, localisation IoU on planted boxes and
masks, both worked out by hand, and their place in evaluate()'s result."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fashionsearchnet.evaluation.figures import MethodFeatures, figure
from fashionsearchnet.evaluation.localisation import localisation
from fashionsearchnet.evaluation.protocol import evaluate
from fashionsearchnet.evaluation.specificity import region_specificity
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable
from tests.evaluation.test_protocol import SCHEMA, G, L, R, S, B, make

D = 2
# prototypes of color r, g, b (image-level) and region-specific sleeve ones (r and g swapped)
PROTOS = [np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32), np.zeros((2, D), np.float32)]
SLEEVE = np.array([[10.0, 0.0], [0.0, 0.0], [0.0, 10.0]], np.float32)


def params(region: bool = False) -> SearchParams:
    A = len(SCHEMA.attributes)
    return SearchParams(SCHEMA, PROTOS, np.zeros((A + 1, A)), np.zeros((A + 1, A * D, 1)),
                        region_prototypes={"sleeve:color": SLEEVE} if region else {})


def planted():
    # gallery rows 0-4, query row 5; region pairs: sleeve:color (P 0), torso:color (P 1)
    # two-tone (sleeve != torso): rows 0 (torso r, sleeve g), 1 (r, b), 2 (g, r); row 3 one-tone; row 4 no sleeve
    rows = [("gallery", R, S)] * 2 + [("gallery", G, S), ("gallery", B, L), ("gallery", R, L), ("query", G, S)]
    region = {"sleeve:color": [G, B, R, B, -1, G], "torso:color": [R, R, G, B, R, G]}
    ds = make(rows, region)
    reps = np.zeros((6, 2, D), np.float32)
    reps[0, 0] = [9.0, 1.0]   # nearest image-level g (right), region-specific r
    reps[1, 0] = [1.0, 1.0]   # nearest image-level r (the torso's: wrong), region-specific g (wrong)
    reps[2, 0] = [1.0, 0.5]   # nearest image-level r (right), region-specific g
    reps[3, 0] = [0.0, 10.0]  # one-tone: not counted
    table = FeatureTable(np.zeros((6, 2, D), np.float32), reps, np.zeros((6, 5), np.float32))
    return ds, table


def test_specificity_counts_two_tone_gallery_items_nearest_to_their_true_value():
    ds, table = planted()
    # image-level prototypes: rows 0 and 2 right, row 1 wrong -> 2/3
    assert region_specificity(ds, params(), table) == {"sleeve:color": pytest.approx(66.667), "n:sleeve:color": 3,
                                                       "n": 3, "prototypes": "image"}
    # region-specific prototypes (r and g swapped): row 0 -> r (wrong), row 1 -> g (wrong), row 2 -> g (wrong)
    assert region_specificity(ds, params(region=True), table)["sleeve:color"] == 0.0
    assert region_specificity(ds, params(region=True), table)["prototypes"] == "region"


def test_specificity_figure_leaves_out_methods_without_region_representations():
    ds, table = planted()
    f = MethodFeatures(params(), table)
    out = figure(ds, "region_specificity", {"attribute": f, "fsn": f})
    assert list(out) == ["fsn"]
    res = evaluate(ds, {}, protocols=["region_specificity"], features={"fsn": f})
    assert res == {"region_specificity": {"fsn": region_specificity(ds, params(), table)}}


def test_localisation_iou_of_planted_boxes_against_planted_masks(tmp_path):
    # 8x8 masks, 4x4 cell map (a cell = 2x2 pixels)
    ds = make([("gallery", R, S), ("gallery", R, S), ("query", R, S)])
    ds.root = tmp_path
    ds.images = [tmp_path / "images" / f"{i:06d}.jpg" for i in range(3)]
    (tmp_path / "masks").mkdir()
    m0 = np.zeros((8, 8), np.uint8)
    m0[2:8, 2:6] = 1  # torso: pixels x 2-5, y 2-7
    m0[0:2, 2:6] = 3  # collar: x 2-5, y 0-1
    m1 = np.zeros((8, 8), np.uint8)
    m1[0:4, 0:4] = 1  # torso x 0-3, y 0-3; no collar
    for i, m in enumerate((m0, m1, m1)):
        cv2.imwrite(str(tmp_path / "masks" / f"{i:06d}.png"), m)
    # boxes: attributes color, shape; regions sleeve, torso  (inclusive cells)
    boxes = np.zeros((3, 4, 4), np.float32)
    boxes[0, 0] = [1, 1, 2, 3]  # colour box = pixels x 2-5, y 2-7: IoU 1 with the torso
    boxes[1, 0] = [0, 0, 0, 0]  # pixels x 0-1, y 0-1 (4 px) vs torso 16 px: IoU 0.25
    boxes[0, 3] = [1, 0, 2, 3]  # torso region box: x 2-5, y 0-7 = 32 px vs 24 px torso: IoU 0.75
    boxes[1, 3] = [0, 0, 1, 1]  # x 0-3, y 0-3: IoU 1
    labels = {"color": (1,), "shape": (1, 2, 3)}
    out = localisation(ds, boxes, (4, 4), ds.indices("gallery"), ["color", "shape"], attr_labels=labels,
                       region_labels={"sleeve": (2,), "torso": (1,)}, region_names=["sleeve", "torso"])
    # shape box (cell 0,0 for both): image 0 garment x 2-5, y 0-7 (32 px), box x 0-1 y 0-1: IoU 0; image 1: 0.25
    assert out == {"color": pytest.approx(0.625), "shape": pytest.approx(0.125), "region:torso": pytest.approx(0.875),
                   "n": 2}  # no sleeve pixels anywhere: region:sleeve left out


def test_figures_table_lists_each_figure_and_method_and_markdown_table_leaves_them_out():
    from fashionsearchnet.evaluation.figures import figures_table
    from fashionsearchnet.evaluation.protocol import markdown_table

    res = {"region": {"fsn": {"top1": 50.0, "n": 2}},
           "region_specificity": {"fsn": {"sleeve:color": 66.667, "n": 3, "prototypes": "image"}},
           "localisation": {"fsn": {"color": 0.625, "n": 2}}}
    assert figures_table(res).splitlines()[2:] == [
        "| region_specificity | fsn | sleeve:color 66.7, n 3, prototypes image |",
        "| localisation | fsn | color 0.625, n 2 |"]
    assert "region_specificity" not in markdown_table(res) and "| region | fsn | 50.0 |" in markdown_table(res)
    assert figures_table({"region": {}}) == ""
