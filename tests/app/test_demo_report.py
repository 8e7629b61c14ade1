"""fsn demo's example picking and report, without training: examples picked from a synthetic catalogue, answers
planted, marks and counts checked against the labels by hand, the page rendered from its template with every
shown value escaped."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fashionsearchnet.app.demo.examples import make_examples
from fashionsearchnet.app.demo.report import render, report_data, write_report
from fashionsearchnet.app.service_api import Answer, Box, QueryInfo
from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.gallery.explain import box_color, draw_query

pytest.importorskip("jinja2")
CFG = {"count": 240, "size": 64, "seed": 7, "preset": "tiny", "epochs": [1, 1, 1], "k": 8}


@pytest.fixture(scope="module")
def ds(tiny_synth):
    return load_dataset(tiny_synth)


def _plant(ds, examples, rows):
    """Answer every example with ``rows`` (distance = rank / 10), query boxes one attribute and one region box."""
    for ex in examples:
        results = [{"id": ds.images[r].relative_to(ds.root).as_posix(), "item_id": None, "distance": i / 10,
                    "predicted": {}, "metadata": {}} for i, r in enumerate(rows)]
        info = QueryInfo(64, 64, {"color": {"value": "red", "confidence": 0.875}},
                         [Box("color", "attribute", (4.0, 8.0, 40.0, 60.0)), Box("sleeve", "region", (0, 0, 20, 30))])
        ex.answer = Answer(info, results, "fsn", True, len(ds))
        ex.took_ms = 12.34


def _expected_mark(ds, ex, row) -> str:
    """The hit rule of each example, from the labels by name."""
    lab = ds.label_dict(row)
    if not ex.sets:  # a photo: every attribute as the query's
        qrow = next(i for i, p in enumerate(ds.images) if str(p) == ex.query)
        return "full" if lab == ds.label_dict(qrow) else ""
    qrow = next(i for i, p in enumerate(ds.images) if p.relative_to(ds.root).as_posix() == ex.query)
    (key, value), = (s.split("=") for s in ex.sets)
    if ":" not in key:  # attribute change: the target is the query with `key` set to `value`
        return "full" if lab == {**ds.label_dict(qrow), key: value} else "part" if lab[key] == value else ""
    region, attr = key.split(":")
    vals = ds.schema.attribute(attr).values
    rl = ds.region_labels[key]
    if rl[row] < 0 or vals[rl[row]] != value:
        return ""
    return "full" if lab[attr] == ds.label_dict(qrow)[attr] else "part"


def test_examples_are_a_photo_a_colour_change_and_a_region_change_unlike_the_query(ds):
    photo, colour, region = make_examples(ds)
    assert photo.sets == [] and photo.query == str(ds.images[ds.indices("query")[0]])  # a file path, as an upload
    (key, value), = (s.split("=") for s in colour.sets)
    qrow = photo.rows[colour.query]
    assert key == "color" and ds.label_dict(qrow)["color"] != value
    (rkey, rvalue), = (s.split("=") for s in region.sets)
    rrow = region.rows[region.query]
    assert rkey == "sleeve:color" and ds.label_dict(rrow)["color"] != rvalue  # unlike the torso
    assert ds.splits[qrow] == ds.splits[rrow] == "query"


def test_report_data_marks_every_result_by_the_labels(ds):
    examples = make_examples(ds)
    _plant(ds, examples, range(len(ds)))
    data = report_data(ds, examples, CFG, "g", {"items": len(ds), "backend": "ort-cpu"},
                       {"data": {"reused": True, "seconds": 1.25}})
    json.dumps(data)  # JSON-able as written to report.json
    for ex, d in zip(examples, data["examples"]):
        want = [_expected_mark(ds, ex, r) for r in range(len(ds))]
        assert [x["mark"] for x in d["results"]] == want
        assert d["full"] == want.count("full") and d["part"] == want.count("full") + want.count("part")
        # not a vacuous comparison: the photo finds itself, each change has matching items in the catalogue
        assert (d["part"] > d["full"]) if ex.sets else (d["full"] >= 1)
        assert d["command"] == " ".join(["fsn search g", ex.query, *(f"--set {s}" for s in ex.sets), "-k 8"])
        assert d["boxes"][0] == {"name": "color", "kind": "attribute", "box": [4.0, 8.0, 40.0, 60.0],
                                 "color": "#%02x%02x%02x" % box_color(0)}
        assert d["results"][3]["truth"] == ", ".join(f"{k}={v}" for k, v in ds.label_dict(3).items() if v)


def test_the_page_shows_every_example_and_escapes_what_it_shows(ds):
    examples = make_examples(ds)
    _plant(ds, examples, range(8))
    examples[0].title = "<script>alert('title')</script>"
    examples[1].answer.query.boxes[0] = Box('"><img src=x onerror=alert(1)>', "attribute", (1, 1, 9, 9))
    data = report_data(ds, examples, CFG, "/tmp/g & <h>", {"items": 240, "backend": "ort-cpu"},
                       {"data": {"reused": True, "seconds": 1.25}, "run": {"reused": False, "seconds": 61.0}})
    data["examples"][2]["results"][0]["truth"] = "color=<b>red</b>"
    pics = {"queries": ["data:image/jpeg;base64,Q"] * 3,
            "results": {x["id"]: "data:image/jpeg;base64,R" for d in data["examples"] for x in d["results"]}}
    page = render(data, pics)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>red</b>" not in page and "color=&lt;b&gt;red&lt;/b&gt;" in page
    assert "fsn serve /tmp/g &amp; &lt;h&gt; --port 8080" in page
    assert page.count("<section><h2>") == 3 + 1 and page.count('<figure class="r') == 3 * 8
    assert page.count("data:image/jpeg;base64,") == 3 * 8 + 3
    # the numbers as the page words them
    assert "d=0.3" in page and "(88%)" in page and "12 ms." in page and "61.0 s" in page
    d = data["examples"][1]
    assert f"{d['part']} of 8 results match the change, {d['full']} match every attribute of the target" in page
    assert f"{data['examples'][0]['full']} of 8 results have every attribute of the query" in page
    assert "epochs 1/1/1" in page and "(no change)" in page


def test_write_report_writes_the_data_and_a_self_contained_page(ds, tmp_path):
    examples = make_examples(ds)
    _plant(ds, examples, range(5))
    data = report_data(ds, examples, CFG, "g", {"items": 240, "backend": "ort-cpu"}, {})
    page = write_report(tmp_path, data, ds).read_text(encoding="utf-8")
    assert json.loads((tmp_path / "report.json").read_text()) == data
    urls = re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', page)
    assert len(urls) == 3 * 5 + 3 and len(set(urls)) == 5 + 2  # 5 thumbnails; the photo and two item queries
    assert not list(tmp_path.glob("*.tmp"))


def test_query_boxes_are_drawn_in_their_legend_colour_and_width():
    white = np.full((100, 100, 3), 255, np.uint8)
    boxes = np.array([[0.1, 0.1, 0.9, 0.9], [0.1, 0.1, 0.9, 0.9]])
    img = draw_query(white, boxes, ["a", "b"], size=100, widths=[2, 1], captions=False, stagger=3)
    white_px = (255, 255, 255)
    assert tuple(img[50, 8]) == white_px and tuple(img[50, 10]) == box_color(0) == tuple(img[50, 11])  # x0 = 10
    assert tuple(img[50, 12]) == white_px == tuple(img[50, 14]) and tuple(img[50, 13]) == box_color(1)  # inset 3, 1 px
    assert tuple(img[50, 50]) == white_px


def test_region_example_picks_the_request_the_gallery_can_answer_most_by_hand():
    """Gallery answers = items with the asked sleeve colour on the query's torso colour. Planted: query row 0
    (torso red, sleeves red) can be answered 1x (green) or 3x (blue); query row 1 (sleeveless) is never picked."""
    from pathlib import Path
    from types import SimpleNamespace

    from fashionsearchnet.app.demo.examples import region_example
    from fashionsearchnet.data.schema import Attribute, Region, Schema

    sch = Schema(attributes=(Attribute("category", ("a", "b")), Attribute("collar", ("x", "y")),
                             Attribute("sleeve", ("sleeveless", "short")), Attribute("color", ("r", "g", "b"))),
                 regions=(Region("collar", ("collar",), ("color",)), Region("sleeve", ("sleeve",), ("color",)),
                          Region("torso", ("category", "color"), ("color",), ("collar", "sleeve"), True)))
    # rows 0-1 queries; 2-7 gallery: (sleeve colour, torso colour)
    labels = np.zeros((8, 4), np.int32)
    labels[:, 2] = 1  # short sleeves
    labels[1, 2] = 0  # row 1: sleeveless
    torso = [0, 2, 0, 0, 0, 0, 1, 0]
    sleeve = [0, -1, 1, 2, 2, 2, 2, 0]
    labels[:, 3] = torso
    splits = np.array(["query"] * 2 + ["gallery"] * 6)
    ds = SimpleNamespace(schema=sch, labels=labels, region_labels={"sleeve:color": np.array(sleeve, np.int32)},
                         indices=lambda s: np.flatnonzero(splits == s), images=[Path(f"/c/{i}.png") for i in range(8)],
                         root=Path("/c"))
    ex = region_example(ds, [0, 1])
    assert ex.sets == ["sleeve:color=" + sch.attributes[3].values[2]] and ex.query == "0.png"
    assert [ex.hit(r) for r in range(2, 8)] == ["", "full", "full", "full", "part", ""]


def test_attribute_example_picks_the_colour_change_the_gallery_can_answer_most_by_hand():
    """Gallery answers = items equal to the query's labels with the colour changed. Planted: query row 0 (a, x, r)
    can be answered 1x (g); query row 1 (b, y, g) 2x (r) and 1x (b): row 1 to r is picked."""
    from pathlib import Path
    from types import SimpleNamespace

    from fashionsearchnet.app.demo.examples import attribute_example
    from fashionsearchnet.data.schema import Attribute, Schema

    sch = Schema(attributes=(Attribute("category", ("a", "b")), Attribute("collar", ("x", "y")),
                             Attribute("color", ("r", "g", "b"))))
    labels = np.array([[0, 0, 0], [1, 1, 1],  # queries
                       [0, 0, 1], [1, 1, 0], [1, 1, 0], [1, 1, 2], [1, 0, 0], [1, 1, 1]], np.int32)
    splits = np.array(["query"] * 2 + ["gallery"] * 6)
    ds = SimpleNamespace(schema=sch, labels=labels, indices=lambda s: np.flatnonzero(splits == s),
                         images=[Path(f"/c/{i}.png") for i in range(8)], root=Path("/c"))
    ex = attribute_example(ds, [0, 1])
    assert ex.sets == ["color=r"] and ex.query == "1.png"
    assert [ex.hit(r) for r in range(2, 8)] == ["", "full", "full", "", "part", ""]
