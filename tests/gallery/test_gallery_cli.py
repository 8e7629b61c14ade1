"""fsn index / fsn search end to end with the checked-in tiny bundle on the tiny synthetic catalogue (no torch)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fashionsearchnet.app.cli import main
from fashionsearchnet.errors import GalleryError
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.gallery.indexer import index_catalogue, list_catalogue
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.runtime.extractor import FeatureExtractor


@pytest.fixture(scope="module")
def indexed(tiny_bundle, tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("gal") / "g"
    assert main(["index", str(tiny_bundle), str(tiny_synth), "--out", str(out), "--batch-size", "64"]) == 0
    return out


def test_index_stores_the_extractor_features_and_metadata(tiny_bundle, tiny_synth, indexed):
    g = Gallery.open(indexed, bundle=Bundle.open(tiny_bundle))
    recs = list_catalogue(tiny_synth)
    assert len(g) == len(recs) == 240
    with FeatureExtractor(tiny_bundle, backend="ort") as fx:
        f = fx.extract([recs[i]["path"] for i in (0, 100, 239)])
    np.testing.assert_allclose(g.features.attr_reps[[0, 100, 239]], f.attr_reps, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.features.region_reps[[0, 100, 239]], f.region_reps, rtol=1e-4, atol=1e-5)
    assert g.result(100, 0).predicted == {a: (v, pytest.approx(c, abs=1e-5)) for a, (v, c) in f.predicted[1].items()}
    assert g.records[0]["item_id"] and g.records[0]["metadata"]["split"] in ("train", "gallery", "query")
    assert g.boxes.min() >= 0 and g.boxes.max() <= 1


def test_cli_search_by_id_json_matches_exact_searcher(indexed, capsys):
    g = Gallery.open(indexed)
    qid = g.records[5]["id"]
    capsys.readouterr()
    assert main(["search", str(indexed), qid, "--set", "color=red", "-k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = ExactSearcher(g.params, g.features, "fsn").search([5], [Request(set=(("color", "red"),))],
                                                             np.delete(np.arange(240), 5), 5)[0]
    assert [r["id"] for r in out["results"]] == [g.records[r]["id"] for r in rows]
    assert out["results"][0]["predicted"]["color"]["value"] in g.schema.attribute("color").values


def test_cli_search_by_image_with_region_request_filter_and_explain(indexed, tiny_synth, tmp_path, capsys):
    g = Gallery.open(indexed)
    img = g.records[7]["path"]
    png = tmp_path / "why.png"
    capsys.readouterr()
    assert main(["search", str(indexed), img, "--set", "sleeve:color=blue", "--filter", "split=gallery",
                 "-k", "4", "--json", "--explain", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "fsn_region" and len(out["results"]) == 4
    assert all(r["metadata"]["split"] == "gallery" for r in out["results"])
    pic = cv2.imread(str(png))
    assert pic is not None and pic.shape[0] > 100 and pic.shape[1] > 400
    # an image query equals the same image's stored features (the query stays in: it is not a gallery id)
    assert main(["search", str(indexed), img, "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == g.records[7]["id"]


@pytest.mark.parametrize("argv, needle", [
    (["--set", "colour=red"], "valid attributes"),
    (["--set", "hat:color=red"], "valid regions"),
    (["--filter", "size=M"], "unknown key 'size'"),
    (["-k", "0"], "positive"),
    (["-k", "100000"], "larger than the gallery"),
])
def test_cli_bad_input(indexed, capsys, argv, needle):
    g = Gallery.open(indexed)
    assert main(["search", str(indexed), g.records[0]["id"], *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_an_output_path_the_file_system_refuses_is_one_line_exit_1(indexed, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "explain.png"
    g = Gallery.open(indexed)
    assert main(["search", str(indexed), g.records[0]["id"], "--explain", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile" in err and "Traceback" not in err and "may write there" in err


def test_index_resumes_after_a_crash_and_refuses_to_overwrite(tiny_bundle, tiny_synth, tmp_path, indexed):
    out = tmp_path / "g"
    calls = []

    def boom(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_catalogue(tiny_bundle, tiny_synth, out, batch_size=50, progress=boom)
    assert len(list((out / ".work").glob("chunk_*.npz"))) == 2 and not (out / "CURRENT").exists()
    again = []
    g = index_catalogue(tiny_bundle, tiny_synth, out, batch_size=50, progress=again.append)
    assert again == [50, 50, 40]  # only the three batches left
    np.testing.assert_allclose(g.features.attr_reps, Gallery.open(indexed).features.attr_reps, rtol=1e-4, atol=1e-5)
    assert not (out / ".work").exists()
    with pytest.raises(GalleryError, match="--force"):
        index_catalogue(tiny_bundle, tiny_synth, out, batch_size=50)


def test_cli_search_without_a_query_composes_one_from_the_set_values(indexed, capsys):
    g = Gallery.open(indexed)
    capsys.readouterr()
    assert main(["search", str(indexed), "--set", "category=dress", "--set", "color=red", "-k", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    req = Request.parse(["category=dress", "color=red"], g.schema)
    rows = ExactSearcher(g.params, g.features, "fsn").compose([req], np.arange(240), 6)[0]
    assert out["query"] is None and out["request"] == ["category=dress", "color=red"]
    assert [r["id"] for r in out["results"]] == [g.records[r]["id"] for r in rows]
    assert main(["search", str(indexed), "--set", "sleeve:color=green", "-k", "3"]) == 0
    assert "3 results for the description (sleeve:color=green; fsn_region" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    ([], "no query: give a query image or item id, or describe the item with --set attr=value"),
    (["--set", "color=magenta"], "valid values: "),
    (["--set", "collar:pattern=plain"], "cannot be asked for region 'collar'; valid: color"),
    (["--set", "color=red", "--explain", "x.png"], "--explain draws the query image"),
])
def test_cli_composed_bad_input_is_one_line(indexed, capsys, argv, needle):
    assert main(["search", str(indexed), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
