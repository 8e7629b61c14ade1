"""The search core's formats and helpers: the one params.npz loader, the feature table's scatter, the eq. 7
kernels, the method choice, and the schema helpers (offsets, per-attribute arg-max, difference)."""
from __future__ import annotations

import numpy as np
import pytest

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import BundleError, GalleryError
from fashionsearchnet.gallery.planner import gallery_method
from fashionsearchnet.search.params import DEFAULT_REGION_WEIGHT, load_params, save_params
from fashionsearchnet.search.projection import global_representation
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.scorers import effective_method
from fashionsearchnet.search.table import FeatureTable

from tests.support.gallery_fixtures import SCHEMA_DICT, random_params, random_table, schema


@pytest.fixture
def sch():
    return schema()


def test_params_round_trip_and_a_missing_region_weight_reads_as_the_default(sch, tmp_path):
    p = random_params(sch, region_weight=0.25)
    save_params(tmp_path / "params.npz", p)
    back = load_params(tmp_path / "params.npz", sch, 0.25)
    assert back.region_weight == 0.25
    for a in range(len(sch.attributes)):
        np.testing.assert_array_equal(back.prototypes[a], p.prototypes[a])
    np.testing.assert_array_equal(back.W, p.W.astype(np.float32))
    assert load_params(tmp_path / "params.npz", sch, None).region_weight == DEFAULT_REGION_WEIGHT == 0.5


@pytest.mark.parametrize("drop, shape, needle", [
    ("prototypes_1", None, "array 'prototypes_1' (attribute 'collar') is missing"),
    ("lam", None, "array 'lam' is missing"),
    (None, ("W", (1, 2, 3)), "W has shape (1, 2, 3), expected (6, 20, G)"),
    (None, ("prototypes_0", (2, 4)), "prototypes_0 has shape (2, 4), expected (3, D) for attribute 'category'"),
])
def test_the_loader_names_the_file_the_array_and_the_fix(sch, tmp_path, drop, shape, needle):
    arrays = random_params(sch).arrays()
    if drop:
        del arrays[drop]
    if shape:
        arrays[shape[0]] = np.zeros(shape[1], np.float32)
    save_params(tmp_path / "params.npz", arrays)
    with pytest.raises(GalleryError, match="re-index the gallery") as e:
        load_params(tmp_path / "params.npz", sch, 0.5, GalleryError, "re-index the gallery")
    assert needle in str(e.value) and str(tmp_path / "params.npz") in str(e.value)
    with pytest.raises(BundleError, match="re-export the bundle"):  # the bundle's wording by default
        load_params(tmp_path / "params.npz", sch, 0.5)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="bad.npz: cannot read"):
        load_params(tmp_path / "bad.npz", sch, 0.5)


def test_scatter_places_rows_and_leaves_zeros(sch):
    part = random_table(sch, 3)
    full = FeatureTable.scatter(6, np.array([4, 0, 2]), part)
    assert len(full) == 6
    np.testing.assert_array_equal(full.attr_reps[4], part.attr_reps[0])
    np.testing.assert_array_equal(full.region_reps[2], part.region_reps[2])
    np.testing.assert_array_equal(full.probs[0], part.probs[1])
    assert not full.attr_reps[[1, 3, 5]].any() and not full.probs[[1, 3, 5]].any()


def test_the_three_kernels_are_eq7(sch):
    p = random_params(sch)
    reps = random_table(sch, 11).attr_reps
    A, D = reps.shape[1:]
    for s in (0, 3):
        hand = np.array([[sum(reps[n, a, d] * p.lam[s, a] * p.W[s, a * D + d, g] for a in range(A) for d in range(D))
                          for g in range(p.global_dim)] for n in range(len(reps))])
        for kernel in ("gemm", "blocks", "float64"):
            got = global_representation(reps, p.lam, p.W, s, kernel=kernel)
            np.testing.assert_allclose(got, hand, rtol=1e-4, atol=1e-5)
        assert global_representation(reps, p.lam, p.W, s, kernel="float64").dtype == np.float64
    with pytest.raises(Exception, match="kernel 'fast'"):
        global_representation(reps, p.lam, p.W, 0, kernel="fast")


def test_the_method_a_request_gets():
    plain, region = Request(set=(("color", "red"),)), Request(region=(("sleeve", "color", "red"),))
    assert gallery_method("fsn", 3) == "fsn_region" and gallery_method("fsn", 0) == "fsn"
    assert gallery_method("attribute", 3) == "attribute"
    assert effective_method("fsn_region", plain) == "fsn" and effective_method("fsn_region", region) == "fsn_region"
    assert effective_method("fsn", region) == "fsn" and effective_method("no_aam", region) == "no_aam"


def test_schema_offsets_argmax_and_values(sch):
    assert sch.class_offsets == (0, 3, 6, 8, 12, 14)
    probs = np.zeros((2, 14), np.float32)
    probs[0, [1, 3, 7, 11, 12]] = [0.6, 0.5, 0.9, 0.4, 0.7]
    probs[1, [0, 2, 5, 6, 8, 9, 13]] = [0.5, 0.5, 0.8, 0.6, 0.3, 0.3, 0.55]  # ties: the first value wins
    idx, conf = sch.predicted(probs)
    assert idx.tolist() == [[1, 0, 1, 3, 0], [0, 2, 0, 0, 1]] and idx.dtype == np.int64
    np.testing.assert_allclose(conf, [[0.6, 0.5, 0.9, 0.4, 0.7], [0.5, 0.8, 0.6, 0.3, 0.55]])
    vals = sch.predicted_values(probs)
    assert vals[0]["color"] == ("white", pytest.approx(0.4)) and vals[1]["collar"] == ("hood", pytest.approx(0.8))


def test_schema_difference(sch):
    assert sch.difference(schema()) is None
    d = {**SCHEMA_DICT, "attributes": [dict(a) for a in SCHEMA_DICT["attributes"]]}
    d["attributes"][3] = {"name": "color", "values": ["red", "blue", "green", "white", "pink"]}
    assert sch.difference(Schema.from_dict(d)) == "attribute 'color': values ['pink'] are new"
    d = {**SCHEMA_DICT, "regions": {k: v for k, v in SCHEMA_DICT["regions"].items() if k != "collar"}}
    d["regions"]["torso"] = {**d["regions"]["torso"], "subtract": ["sleeve"]}
    other = Schema.from_dict(d)
    assert "regions ['collar', 'sleeve', 'torso'] vs ['sleeve', 'torso']" in sch.difference(other)
    assert sch.difference(other, regions=False) is None
    d = {**SCHEMA_DICT, "regions": {**SCHEMA_DICT["regions"], "torso": {**SCHEMA_DICT["regions"]["torso"],
                                                                        "primary": False}}}
    assert sch.difference(Schema.from_dict(d)) is not None  # the primary flag is part of the linkage
