"""Adapters: a DeepFashion-format fixture made here, and the fashion-product-224 folder when present."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fashionsearchnet.data.adapters import deepfashion_to_dataset, fashion_product_to_dataset
from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]  # tests/data/test_adapters.py -> the repository root
FASHION_PRODUCT = REPO.parent / "shared" / "data" / "fashion-product-224"


def _deepfashion(root: Path) -> Path:
    names = [("floral", 1), ("striped", 1), ("cotton", 2), ("a-line", 3), ("maxi dress shape", 3), ("boho", 5)]
    (root / "Anno").mkdir(parents=True)
    (root / "Eval").mkdir()
    (root / "Anno/list_attr_cloth.txt").write_text(
        f"{len(names)}\nattribute_name  attribute_type\n" + "".join(f"{n}    {t}\n" for n, t in names))
    # image -> values for the 6 attributes
    imgs = {
        "img/A/1.jpg": [1, -1, 1, 1, -1, -1],   # texture floral, shape a-line
        "img/A/2.jpg": [-1, 1, -1, -1, 1, -1],  # striped, maxi dress shape
        "img/B/3.jpg": [1, 1, -1, 1, -1, 1],    # two textures -> texture unknown; shape a-line
        "img/B/4.jpg": [-1, -1, 1, -1, -1, 1],  # no texture, no shape -> dropped
        "img/C/5.jpg": [-1, 1, 0, -1, -1, -1],  # striped, no shape
    }
    lines = "".join(f"{k}  " + " ".join(str(v) for v in vals) + "\n" for k, vals in imgs.items())
    (root / "Anno/list_attr_img.txt").write_text(f"{len(imgs)}\nimage_name  attribute_labels\n{lines}")
    cats = {"img/A/1.jpg": 2, "img/A/2.jpg": 1, "img/B/3.jpg": 2, "img/B/4.jpg": 1, "img/C/5.jpg": 1}
    (root / "Anno/list_category_img.txt").write_text(
        f"{len(cats)}\nimage_name  category_label\n" + "".join(f"{k} {v}\n" for k, v in cats.items()))
    (root / "Anno/list_category_cloth.txt").write_text("2\ncategory_name  category_type\nDress 3\nTee 1\n")
    parts = {"img/A/1.jpg": "train", "img/A/2.jpg": "val", "img/B/3.jpg": "test", "img/B/4.jpg": "train",
             "img/C/5.jpg": "train"}
    (root / "Eval/list_eval_partition.txt").write_text(
        f"{len(parts)}\nimage_name  evaluation_status\n" + "".join(f"{k} {v}\n" for k, v in parts.items()))
    for k in imgs:
        (root / k).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / k), np.full((16, 16, 3), 200, np.uint8))
    return root


def test_deepfashion_fixture_converts_as_the_paper_uses_it(tmp_path):
    out = deepfashion_to_dataset(_deepfashion(tmp_path / "df"), tmp_path / "out")
    ds = load_dataset(out)
    assert ds.schema.names == ("texture", "shape", "category")
    assert len(ds) == 4  # img/B/4.jpg has neither texture nor shape
    got = {p.name: ds.label_dict(i) for i, p in enumerate(ds.images)}
    assert got["1.jpg"] == {"texture": "floral", "shape": "a-line", "category": "Tee"}
    assert got["2.jpg"] == {"texture": "striped", "shape": "maxi dress shape", "category": "Dress"}
    assert got["3.jpg"]["texture"] is None  # two texture attributes on: ambiguous -> unknown
    assert got["5.jpg"]["shape"] is None
    splits = {p.name: s for p, s in zip(ds.images, ds.splits)}
    assert splits["1.jpg"] == "train" and splits["2.jpg"] in ("gallery", "query") and splits["3.jpg"] in ("gallery", "query")


def test_deepfashion_truncated_file_is_named(tmp_path):
    root = _deepfashion(tmp_path / "df")
    p = root / "Anno/list_attr_img.txt"
    p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetError, match=r"list_attr_img.txt: line 1 announces 5 entries but the file has 4"):
        deepfashion_to_dataset(root, tmp_path / "out")


@pytest.mark.parametrize("name, edit, needle", [
    ("Anno/list_category_img.txt", lambda t: t.replace("img/A/2.jpg 1", "img/A/2.jpg one"),
     r"list_category_img.txt: line 4: the category label must be a whole number, got 'one'"),
    ("Eval/list_eval_partition.txt", lambda t: t.replace("img/B/3.jpg test", "img/B/3.jpg"),
     r"list_eval_partition.txt: line 5: 1 cell\(s\), expected at least 2"),
    ("Anno/list_attr_cloth.txt", lambda t: t.replace("boho    5", "boho    x"),
     r"list_attr_cloth.txt: line 8: the attribute type \(1-5\) must be a whole number, got 'x'"),
    ("Anno/list_attr_img.txt", lambda t: t.replace("img/C/5.jpg  -1 1 0 -1 -1 -1", "img/C/5.jpg  -1 1"),
     r"list_attr_img.txt: line 7: 2 values, expected 6"),
])
def test_deepfashion_malformed_rows_name_file_and_line(tmp_path, name, edit, needle):
    root = _deepfashion(tmp_path / "df")
    p = root / name
    p.write_text(edit(p.read_text()))
    with pytest.raises(DatasetError, match=needle):
        deepfashion_to_dataset(root, tmp_path / "out")


def test_deepfashion_file_that_is_not_utf8_is_named(tmp_path):
    root = _deepfashion(tmp_path / "df")
    (root / "Eval/list_eval_partition.txt").write_bytes(b"1\nimage_name evaluation_status\n\xff\xfe 1\n")
    with pytest.raises(DatasetError, match=r"list_eval_partition.txt: not UTF-8"):
        deepfashion_to_dataset(root, tmp_path / "out")


@pytest.mark.skipif(not FASHION_PRODUCT.is_dir(), reason="fashion-product-224 not present (benchmark data only)")
def test_fashion_product_apparel_subset(tmp_path):
    ds = load_dataset(fashion_product_to_dataset(FASHION_PRODUCT, tmp_path / "fp"), check_images=False)
    assert len(ds) == 5353
    assert set(ds.schema.names) == {"articleType", "baseColour", "usage", "gender", "season"}
    assert "Tshirts" in ds.schema.attribute("articleType").values
    assert sum(i is not None for i in ds.item_ids) > 1000
    assert ds.images[0].is_file()
