"""Dataset folder validation: every bad row reported with its line, before any work starts."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.errors import DatasetError


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))


def _folder(tmp_path, csv_text, schema=None, images=("a.png", "b.png", "c.png")):
    for name in images:
        _img(tmp_path / name)
    (tmp_path / "attributes.csv").write_text(csv_text)
    if schema is not None:
        (tmp_path / "schema.json").write_text(json.dumps(schema))
    return tmp_path


SCHEMA = {"attributes": [{"name": "color", "values": ["red", "blue"]}, {"name": "collar", "values": ["v", "round"]}],
          "regions": {"sleeve": {"from": ["collar"], "attributes": ["color"]}}}


def test_valid_folder_with_schema_metadata_and_region_truth(tmp_path):
    d = _folder(tmp_path, "image,split,item_id,color,collar,sleeve:color,sku\n"
                          "a.png,train,X,red,v,blue,S1\nb.png,query,X,blue,,,S2\nc.png,gallery,,red,round,red,S3\n", SCHEMA)
    ds = load_dataset(d)
    assert ds.labels.tolist() == [[0, 0], [1, -1], [0, 1]]
    assert ds.region_labels["sleeve:color"].tolist() == [1, -1, 0]
    assert ds.metadata[0] == {"sku": "S1"} and ds.item_ids == ["X", "X", None]
    assert ds.indices("query").tolist() == [1] and ds.lines.tolist() == [2, 3, 4]


def test_inferred_schema_without_schema_json(tmp_path):
    d = _folder(tmp_path, "image,color\na.png,red\nb.png,blue\nc.png,red\n")
    ds = load_dataset(d)
    assert ds.schema.names == ("color",) and ds.schema.attributes[0].values == ("blue", "red")
    assert set(ds.splits) <= {"train", "gallery", "query"}


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    (tmp_path / "lfs.png").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    d = _folder(tmp_path, "image,split,color,collar\n"
                          "a.png,train,red,v\n"          # line 2 ok
                          "missing.png,train,red,v\n"    # 3 missing
                          "b.png,train,green,v\n"        # 4 unknown value
                          "a.png,gallery,red,v\n"        # 5 duplicate of line 2
                          "lfs.png,train,red,v\n"        # 6 LFS pointer
                          "empty.png,train,red,v\n"      # 7 empty file
                          "text.png,train,red,v\n"       # 8 not an image
                          "c.png,holdout,red,v\n",       # 9 bad split
                SCHEMA)
    with pytest.raises(DatasetError) as e:
        load_dataset(d)
    probs = e.value.problems
    assert len(probs) == 7
    expect = {3: "not found", 4: "'green': unknown value; valid: red, blue", 5: "duplicate row", 6: "Git-LFS pointer",
              7: "empty", 8: "not a JPEG", 9: "must be one of train, gallery, query"}
    for line, text in expect.items():
        assert any(f"line {line}:" in p and text in p for p in probs), (line, probs)
    assert "\n" not in str(e.value) and "more problem" in str(e.value)


@pytest.mark.parametrize("csv_text,fragment", [
    ("", "header needs an 'image' column"),
    ("image,color,collar\n", "no data rows"),
    ("file,color\nx,red\n", "header needs an 'image' column"),
    ("image,color\na.png,red\n", r"schema attribute\(s\) collar have no column"),
    ("image,color,collar,hem:color\na.png,red,v,red\n", "unknown region 'hem'"),
])
def test_structural_errors(tmp_path, csv_text, fragment):
    d = _folder(tmp_path, csv_text, SCHEMA)
    with pytest.raises(DatasetError, match=fragment):
        load_dataset(d)


def test_bad_schema_json_names_the_line(tmp_path):
    d = _folder(tmp_path, "image,color\na.png,red\n")
    (d / "schema.json").write_text('{"attributes": [\n  {"name": "color", "values": ["red"]}\n  oops]}')
    with pytest.raises(DatasetError, match=r"schema.json: line 3: invalid JSON"):
        load_dataset(d)


def test_schema_json_nested_too_deeply_or_not_utf8_is_a_one_line_error(tmp_path):
    d = _folder(tmp_path, "image,color\na.png,red\n")
    (d / "schema.json").write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(DatasetError, match=r"schema.json: JSON nested too deeply"):
        load_dataset(d)
    (d / "schema.json").write_bytes(b'{"attributes": "\xff"}')
    with pytest.raises(DatasetError, match=r"schema.json: not UTF-8"):
        load_dataset(d)


def test_cli_reports_one_line_without_traceback(tmp_path):
    d = _folder(tmp_path, "image,color,collar\nnope.png,red,v\n", SCHEMA)
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "convert", "fashion-product", str(d), str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "labels.csv: not found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
