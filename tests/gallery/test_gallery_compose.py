"""Composed queries (no image) through the gallery: exact and approximate agree, filters and k apply, and every
gallery method answers; a request with nothing described is refused with the valid attributes."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.gallery_fixtures import make_gallery

from fashionsearchnet.errors import RequestError
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.request import Request


@pytest.mark.parametrize("sets, floor", [(["color=red"], 0.97), (["category=skirt", "color=green"], 0.95),
                                         (["sleeve:color=blue"], 0.9), (["collar=v", "sleeve:pattern=striped"], 0.9)])
def test_approximate_composed_search_matches_exact(tmp_path, monkeypatch, sets, floor):
    import fashionsearchnet.gallery.planner as gmod

    monkeypatch.setattr(gmod, "REGION_EXACT_BELOW", 2000)  # a 3000-item gallery counts as large for fsn_region too
    g, t = make_gallery(tmp_path / "g", n=3000, D=16, G=32, save=False, hnsw=HnswConfig(), structured=True)
    req = Request.parse(sets, g.schema)
    a = g.search(None, req, k=30)
    b = g.search(None, req, k=30, exact=True)
    assert not a.exact and b.exact and a.method == b.method == ("fsn_region" if req.region else "fsn")
    ref = ExactSearcher(g.params, t, "fsn_region").compose([req], np.arange(3000), 30)[0]
    assert [r.row for r in b.results] == list(ref)
    da = {r.row: r.distance for r in a.results}
    same = sum(1 for r in b.results if r.row in da and da[r.row] == pytest.approx(r.distance, rel=1e-9))
    assert same / 30 >= floor, (sets, same)


def test_filters_and_k_apply_to_composed_queries(tmp_path):
    g, t = make_gallery(tmp_path / "g", n=600, save=False, structured=True)
    req = Request.parse(["color=red"], g.schema)
    res = g.search(None, req, k=7, filters=["stock=yes"])
    assert len(res.results) == 7 and all(r.metadata["stock"] == "yes" for r in res.results)
    allowed = np.flatnonzero(g.filter_mask(["stock=yes"]))
    ref = ExactSearcher(g.params, t, "fsn").compose([req], allowed, 7)[0]
    assert [r.row for r in res.results] == list(ref)
    assert res.candidates == len(allowed)  # no query item to leave out


def test_attribute_gallery_ranks_by_predicted_probability(tmp_path):
    g, t = make_gallery(tmp_path / "g", n=200, method="attribute", save=False)
    res = g.search(None, Request.parse(["color=blue", "sleeve=long"], g.schema), k=5)
    sch = g.schema
    off = sch.class_offsets
    joint = t.probs[:, off[sch.attr_index("color")] + 1].astype(np.float64) * \
        t.probs[:, off[sch.attr_index("sleeve")] + 1].astype(np.float64)
    assert res.method == "attribute" and [r.row for r in res.results] == list(np.argsort(-joint, kind="stable")[:5])


def test_nothing_described_is_refused(tmp_path):
    g, _ = make_gallery(tmp_path / "g", save=False)
    with pytest.raises(RequestError, match="no query: .*valid attributes: category, collar, sleeve, color, pattern"):
        g.search(None, Request())
