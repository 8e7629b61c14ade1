"""fsn update GALLERY [--add DATA] [--remove ID]... [--meta ID KEY=VALUE]... with the checked-in tiny bundle."""
from __future__ import annotations

import json
import shutil

import pytest

from fashionsearchnet.app.cli import main
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.gallery.indexer import list_catalogue


@pytest.fixture(scope="module")
def folders(tiny_synth, tmp_path_factory):
    """Two image folders: `old` (12 images) and `new` (the same 12 plus 4 more)."""
    root = tmp_path_factory.mktemp("upd")
    recs = list_catalogue(tiny_synth)
    for name, n in (("old", 12), ("new", 16)):
        (root / name).mkdir()
        for r in recs[:n]:
            shutil.copy(r["path"], root / name / f"im{recs.index(r):03d}.png")
    return root


@pytest.fixture
def gallery(folders, tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("g") / "g"
    assert main(["index", str(tiny_bundle), str(folders / "old"), "--out", str(out)]) == 0
    return out


def _search(capsys, *argv):
    capsys.readouterr()
    assert main(["search", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_add_then_search_finds_the_new_items_and_skips_present_ones(gallery, folders, capsys):
    gen = Gallery.open(gallery).generation
    assert main(["update", str(gallery), "--add", str(folders / "new"), "--batch-size", "3"]) == 0
    g = Gallery.open(gallery)
    assert len(g) == 16 and g.generation == gen + 1 and not (gallery / ".work-add").exists()
    assert sorted(r["id"] for r in g.records[12:]) == ["im012.png", "im013.png", "im014.png", "im015.png"]
    # an image query of a new item finds that item first (distance 0: the same features)
    out = _search(capsys, gallery, folders / "new" / "im014.png", "-k", "3")
    assert out["results"][0]["id"] == "im014.png" and out["results"][0]["distance"] == pytest.approx(0, abs=1e-6)
    # adding the same folder again adds nothing and still publishes one generation
    assert main(["update", str(gallery), "--add", str(folders / "new")]) == 0
    assert len(Gallery.open(gallery)) == 16


def test_remove_and_meta_are_visible_in_search_and_survive_reopen(gallery, capsys):
    assert main(["update", str(gallery), "--remove", "im003.png", "--meta", "im005.png", "stock=no",
                 "--meta", "im005.png", "price=20"]) == 0
    out = _search(capsys, gallery, "im000.png", "-k", "10")
    ids = [r["id"] for r in out["results"]]
    assert "im003.png" not in ids and len(ids) == 10  # 12 items - the query - the removed one
    assert next(r for r in out["results"] if r["id"] == "im005.png")["metadata"] == {"stock": "no", "price": "20"}
    assert _search(capsys, gallery, "im000.png", "-k", "1", "--filter", "stock=no")["results"][0]["id"] == "im005.png"
    g = Gallery.open(gallery)  # survives reopen
    assert "im003.png" not in g._by_id and g.records[g.row_of("im005.png")]["metadata"]["price"] == "20"
    assert main(["update", str(gallery), "--meta", "im005.png", "price="]) == 0  # KEY= clears a column
    assert Gallery.open(gallery).records[g.row_of("im005.png")]["metadata"] == {"stock": "no"}


@pytest.mark.parametrize("argv, needle", [
    (["--remove", "nope.png"], "no item 'nope.png'"),
    (["--meta", "ghost.png", "stock=no"], "no item 'ghost.png'"),
    (["--meta", "im001.png", "stock"], "expected KEY=VALUE"),
    (["--remove", "im001.png", "--meta", "im001.png", "stock=no"], "removed by --remove im001.png"),
    ([], "nothing to do"),
    (["--meta", "im001.png", "color=red"], "metadata key 'color' is an attribute"),
    (["--meta", "im001.png", "item_id=x"], "metadata key 'item_id' is the item id"),
])
def test_bad_input_is_one_line_and_changes_nothing(gallery, capsys, argv, needle):
    gen = Gallery.open(gallery).generation
    capsys.readouterr()
    assert main(["update", str(gallery), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    g = Gallery.open(gallery)
    assert g.generation == gen and len(g) == 12  # nothing published, nothing removed
