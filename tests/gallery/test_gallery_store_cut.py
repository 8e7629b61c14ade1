"""fsn update CHAIN --keep KEY=VALUE --out STORE (gallery/subset.py): a store gallery holds exactly the chain's
matching items, with the stored features (no re-extraction), bound to the same bundle; its searches equal the
chain's searches filtered the same way; bad --keep / --out are one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
from tests.support.gallery_fixtures import make_gallery

from fashionsearchnet.app.cli import main
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.search.request import Request


@pytest.fixture()
def chain(tmp_path):
    g, t = make_gallery(tmp_path / "chain", n=60)
    g.remove(["img/00002.jpg"])  # a removed item must not travel
    g.save()
    return g, t


def test_store_gallery_is_the_matching_items_with_their_features(chain, tmp_path):
    src, t = chain
    assert main(["update", str(src.root), "--keep", "stock=yes", "--keep", "price=12", "--out",
                 str(tmp_path / "s")]) == 0
    s = Gallery.open(tmp_path / "s")
    want = [i for i in range(60) if i % 3 and 10 + i % 7 == 12 and i != 2]  # records(): stock, price by hand
    assert [r["id"] for r in s.records] == [f"img/{i:05d}.jpg" for i in want]
    np.testing.assert_array_equal(s.features.attr_reps, t.attr_reps[want])
    np.testing.assert_array_equal(s.features.probs, t.probs[want])
    assert s.bundle == src.bundle and s.records[0]["metadata"] == src.records[want[0]]["metadata"]
    q = s.records[1]["id"]
    req = Request(set=(("color", "red"),))
    got = s.search(q, req, k=5, exact=True)
    ref = Gallery.open(src.root).search(q, req, k=5, filters=["stock=yes", "price=12"], exact=True)
    assert [r.id for r in got.results] == [r.id for r in ref.results]
    assert len(Gallery.open(src.root)) == 59  # the chain gallery is unchanged


@pytest.mark.parametrize("argv, needle", [
    (["--keep", "stock=maybe"], "no item of"),
    (["--keep", "store"], "--keep 'store'"),
    (["--keep", "shelf=3"], "unknown key 'shelf'"),
    (["--keep", "stock=yes", "--remove", "img/00001.jpg"], "separate command"),
    ([], "go together"),
])
def test_bad_keep_is_one_line(chain, tmp_path, capsys, argv, needle):
    src, _ = chain
    out = [] if not argv else ["--out", str(tmp_path / "s")]
    if not argv:
        argv = ["--out", str(tmp_path / "s")]
    rc = main(["update", str(src.root), *argv, *out])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "s").exists()
