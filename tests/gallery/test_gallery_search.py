"""Gallery search: planted truths per manipulation kind, ANN vs exact, filters, updates, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.gallery_fixtures import make_gallery, random_table, records

from fashionsearchnet.errors import GalleryError, SchemaError, UsageError
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.table import FeatureTable


def test_open_roundtrip_and_item_query(tmp_path):
    g, t = make_gallery(tmp_path / "g")
    g2 = Gallery.open(tmp_path / "g")
    assert len(g2) == 60 and g2.hnsw.ef == 32 and all(i.ef == 32 for i in g2.indices.values())  # ef re-applied
    np.testing.assert_array_equal(g2.features.attr_reps, t.attr_reps)
    res = g2.search("img/00000.jpg", k=5)
    ref = ExactSearcher(g2.params, t, "fsn").search([0], [Request()], np.arange(1, 60), 5)[0]
    assert [r.row for r in res.results] == list(ref)
    assert res.results[0].distance <= res.results[1].distance
    assert set(res.results[0].predicted) == set(g2.schema.names)
    # item_id naming two images is ambiguous, one image is fine
    with pytest.raises(UsageError, match="names 2 gallery images"):
        g2.search("sku0")


def _plant(g, t, params):
    """Row 0 = the query; row 41 = the query with a hood; row 42 = the query with green sleeves."""
    sch = g.schema
    a, v = sch.attr_index("collar"), sch.value_index("collar", "hood")
    ak, vg = sch.attr_index("color"), sch.value_index("color", "green")
    p = sch.region_pair_index("sleeve", "color")
    t.attr_reps[41], t.region_reps[41] = t.attr_reps[0], t.region_reps[0]
    t.attr_reps[41, a] = params.prototypes[a][v]
    t.attr_reps[42], t.region_reps[42] = t.attr_reps[0] + 0.02, t.region_reps[0]
    t.region_reps[42, p] = params.prototypes[ak][vg]
    t.attr_reps[43] = t.attr_reps[0] + 0.005


@pytest.mark.parametrize("exact", [True, False])
def test_planted_manipulations(tmp_path, exact):
    g0, t = make_gallery(tmp_path / "g", save=False)
    _plant(g0, t, g0.params)
    from fashionsearchnet.gallery.gallery import Gallery as G

    g = G.create(tmp_path / "h", g0.schema, g0.params, g0.bundle, g0.hnsw)
    g.add(t, records(60))
    q = "img/00000.jpg"
    assert g.search(q, k=1, exact=exact).results[0].row == 43
    assert g.search(q, Request(set=(("collar", "hood"),)), k=1, exact=exact).results[0].row == 41
    region = g.search(q, Request(region=(("sleeve", "color", "green"),)), k=1, exact=exact)
    assert region.method == "fsn_region" and region.results[0].row == 42
    # an uploaded image's features (not a gallery row) give the same answer, and the query itself stays in
    res = g.search(t.take([0]), Request(set=(("collar", "hood"),)), k=2, exact=exact)
    assert [r.row for r in res.results][:1] == [41]


def test_ann_matches_exact_on_a_few_thousand_items(tmp_path):
    g, t = make_gallery(tmp_path / "g", n=3000, D=8, G=16, save=False, hnsw=HnswConfig())  # the defaults
    rng = np.random.default_rng(0)
    reqs = [Request(), Request(set=(("color", "red"),)), Request(set=(("color", "red"), ("collar", "v")))]
    for req in reqs:
        hits = 0
        for qi in rng.choice(3000, 20, replace=False):
            ra = g.search(f"img/{qi:05d}.jpg", req, k=30, exact=False)
            rb = g.search(f"img/{qi:05d}.jpg", req, k=30, exact=True)
            a, b = ({r.row: r.distance for r in x.results} for x in (ra, rb))
            hits += len(set(a) & set(b))
            # candidates are re-scored from the stored features: the same distances as the exact search
            assert all(a[r] == pytest.approx(b[r], rel=1e-5) for r in set(a) & set(b))
        assert hits / (20 * 30) >= 0.97, (req, hits)


def test_region_requests_on_a_large_gallery_are_approximate_and_match_exact(tmp_path, monkeypatch):
    """fsn_region above REGION_EXACT_BELOW: set-0 candidates re-scored exactly; same rows and distances as exact."""
    import fashionsearchnet.gallery.planner as gmod

    monkeypatch.setattr(gmod, "REGION_EXACT_BELOW", 2000)  # a 3000-item gallery counts as large
    g, t = make_gallery(tmp_path / "g", n=3000, D=16, G=32, save=False, hnsw=HnswConfig(), structured=True)
    rng = np.random.default_rng(1)
    # a combined request whose sleeve colour the image-level candidate query cannot express is harder
    reqs = [(Request(region=(("sleeve", "color", "green"),)), 0.97),
            (Request(set=(("color", "red"),), region=(("sleeve", "color", "blue"), ("torso", "pattern", "plain"))), 0.9)]
    for req, floor in reqs:
        hits = 0
        for qi in rng.choice(3000, 10, replace=False):
            a = g.search(f"img/{qi:05d}.jpg", req, k=30)
            b = g.search(f"img/{qi:05d}.jpg", req, k=30, exact=True)
            assert a.method == b.method == "fsn_region" and not a.exact and b.exact
            da = {r.row: r.distance for r in a.results}
            hits += sum(1 for r in b.results if r.row in da and da[r.row] == pytest.approx(r.distance, rel=1e-9))
        assert hits / (10 * 30) >= floor, (req, hits)


def test_filters_on_metadata_and_predicted_attributes(tmp_path):
    g, t = make_gallery(tmp_path / "g", n=3000, save=False)
    res = g.search("img/00000.jpg", k=20, filters=["stock=yes", "color=blue"], exact=False)
    ci = g.schema.attr_index("color")
    assert len(res.results) == 20
    for r in res.results:
        assert r.metadata["stock"] == "yes" and r.predicted["color"][0] == "blue"
    ref = g.search("img/00000.jpg", k=20, filters=["stock=yes", "color=blue"], exact=True)
    assert len({r.row for r in res.results} & {r.row for r in ref.results}) >= 18
    with pytest.raises(SchemaError, match="valid values: red, blue, green, white"):
        g.search("img/00000.jpg", filters=["color=purple"])
    with pytest.raises(SchemaError, match="metadata item_id, stock, price"):
        g.search("img/00000.jpg", filters=["size=M"])
    none = g.search("img/00000.jpg", k=5, filters=["price=nope"])
    assert none.results == [] and none.candidates == 0
    assert ci == 3


def test_add_remove_update_without_rebuild(tmp_path):
    g, t = make_gallery(tmp_path / "g")
    extra = random_table(g.schema, 5, seed=9)
    extra.attr_reps[2] = t.attr_reps[0]  # an exact twin of item 0
    g.add(extra, records(5, start=1000))
    assert g.search("img/00000.jpg", k=1, exact=False).results[0].id == "img/01002.jpg"
    g.remove(["img/01002.jpg"])
    assert g.search("img/00000.jpg", k=1, exact=False).results[0].id != "img/01002.jpg"
    g.update_metadata("img/00003.jpg", {"stock": "no", "price": ""})
    g.save()
    g2 = Gallery.open(tmp_path / "g")
    assert len(g2) == 64 and "img/01002.jpg" not in g2._by_id
    r = g2.result(g2.row_of("img/00003.jpg"), 0.0)
    assert r.metadata == {"stock": "no"}
    assert all(x.id != "img/01002.jpg" for x in g2.search("img/00000.jpg", k=64 - 1, exact=False).results)
    with pytest.raises(GalleryError, match="already in the gallery"):
        g2.add(extra.take([0]), records(1, start=1000))


@pytest.mark.parametrize("k, err, msg", [(0, UsageError, "positive"), (61, UsageError, "larger than the gallery")])
def test_bad_k(tmp_path, k, err, msg):
    g, _ = make_gallery(tmp_path / "g", save=False)
    with pytest.raises(err, match=msg):
        g.search("img/00001.jpg", k=k)


def test_unknown_item_region_and_empty_gallery(tmp_path):
    g, _ = make_gallery(tmp_path / "g", save=False)
    with pytest.raises(GalleryError, match="no item 'nope'"):
        g.search("nope")
    with pytest.raises(SchemaError, match="valid regions: collar, sleeve, torso"):
        g.search("img/00001.jpg", Request(region=(("hat", "color", "red"),)))
    empty, _ = make_gallery(tmp_path / "e", n=0, save=False)
    with pytest.raises(GalleryError, match="empty"):
        empty.search(FeatureTable(np.zeros((1, 5, 4)), np.zeros((1, 5, 4)), np.zeros((1, 14))))


def test_filter_strategies_exact_for_few_kept_rows_post_filter_otherwise(tmp_path, monkeypatch):
    import fashionsearchnet.gallery.planner as gmod

    monkeypatch.setattr(gmod, "EXACT_BELOW", 10)  # so that the fraction rule decides on a small gallery
    g, t = make_gallery(tmp_path / "g", n=3000, D=8, G=16, save=False, hnsw=HnswConfig(), structured=True)
    q = "img/00000.jpg"
    # the query's 300 nearest items are out of stock: the first candidate lists hold none in stock,
    # so the search must keep asking for more (growing k) until 30 pass
    near = [r.id for r in g.search(q, k=300, exact=True).results]
    for i in near:
        g.update_metadata(i, {"stock": "no"})
    ann = g.search(q, k=30, filters=["stock=yes"])
    ref = g.search(q, k=30, filters=["stock=yes"], exact=True)
    assert not ann.exact and len(ann.results) == 30 and all(r.metadata["stock"] == "yes" for r in ann.results)
    assert not set(near) & {r.id for r in ann.results}
    assert len({r.row for r in ann.results} & {r.row for r in ref.results}) >= 28
    # price=10 keeps every 7th item, and stock=yes two thirds of those: under 10% of the gallery -> exact
    few = g.search(q, k=30, filters=["stock=yes", "price=10"])
    assert few.exact and few.candidates < 0.1 * len(g)
    assert [r.row for r in few.results] == [r.row for r in g.search(q, k=30, filters=["stock=yes", "price=10"],
                                                                       exact=True).results]
    assert all(r.metadata["price"] == "10" and r.metadata["stock"] == "yes" for r in few.results)


def test_region_requests_below_the_region_threshold_are_exact(tmp_path):
    g, _ = make_gallery(tmp_path / "g", n=2500, save=False)  # above EXACT_BELOW, below REGION_EXACT_BELOW
    res = g.search("img/00000.jpg", Request(region=(("sleeve", "color", "green"),)), k=5)
    assert res.method == "fsn_region" and res.exact
    assert not g.search("img/00000.jpg", k=5).exact  # the plain search still uses the index
