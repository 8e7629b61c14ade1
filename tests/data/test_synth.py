"""The synthetic catalogue: deterministic, the promised columns and value ranges, region truth and masks."""
from __future__ import annotations

import csv
import hashlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.data.synth import MASK_LABELS, generate, synthetic_schema
from fashionsearchnet.errors import UsageError


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_catalogue_other_seed_differs(tmp_path):
    a, b, c = (generate(tmp_path / n, 12, seed=s, size=48) for n, s in (("a", 5), ("b", 5), ("c", 6)))
    assert _digest(a) == _digest(b) != _digest(c)


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "s", 300, seed=1, size=64)


def test_columns_values_and_splits(cat):
    header = next(csv.reader(open(cat / "attributes.csv")))
    assert header[:3] == ["image", "split", "item_id"]
    for col in ("category", "collar", "sleeve", "color", "pattern", "torso:color", "sleeve:color", "collar:color",
                "torso:pattern", "sleeve:pattern"):
        assert col in header
    ds = load_dataset(cat)
    s = synthetic_schema()
    assert ds.schema == s
    assert [len(a.values) >= n for a, n in zip(s.attributes, (5, 4, 3, 8, 4))] == [True] * 5
    # image-level colour/pattern describe the torso
    assert (ds.labels[:, 3] == ds.region_labels["torso:color"]).all()
    assert (ds.labels[:, 4] == ds.region_labels["torso:pattern"]).all()
    # about 30% of items have another colour or pattern on a region
    differ = (ds.region_labels["collar:color"] != ds.labels[:, 3]) | \
             ((ds.region_labels["sleeve:color"] >= 0) & (ds.region_labels["sleeve:color"] != ds.labels[:, 3])) | \
             ((ds.region_labels["sleeve:pattern"] >= 0) & (ds.region_labels["sleeve:pattern"] != ds.labels[:, 4]))
    assert 0.18 < differ.mean() < 0.42
    # sleeveless items have no sleeve truth
    sleeveless = ds.labels[:, 2] == s.value_index("sleeve", "sleeveless")
    assert (ds.region_labels["sleeve:color"][sleeveless] == -1).all()
    fr = {k: (ds.splits == k).mean() for k in ("train", "gallery", "query")}
    assert fr["train"] > 0.6 and 0.1 < fr["gallery"] < 0.3 and 0 < fr["query"] < 0.12
    # colour variants share an item id and differ in colour only
    ids = np.array(ds.item_ids)
    multi = sorted(i for i in set(ids) if (ids == i).sum() > 1)
    assert len(multi) > 20
    for item in multi:  # every product: same design, each variant its own colour
        rows = np.flatnonzero(ids == item)
        assert (ds.labels[rows][:, :3] == ds.labels[rows[0], :3]).all()
        assert len(set(ds.labels[rows, 3])) == len(rows), (item, ds.labels[rows, 3])


def test_masks_match_the_drawn_regions(cat):
    ds = load_dataset(cat)
    s = synthetic_schema()
    for i in range(40):
        m = cv2.imread(str(cat / "masks" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
        assert m.shape == (64, 64)
        has_sleeve = (m == MASK_LABELS["sleeve"]).sum() > 0
        sleeveless = ds.labels[i, 2] == s.value_index("sleeve", "sleeveless")
        if sleeveless:
            assert not has_sleeve
        assert (m == MASK_LABELS["torso"]).sum() > 0.05 * m.size or (m > 0).sum() < 0.2 * m.size
    # the torso pixels carry the torso colour: mean hue of torso pixels of red items is red-ish
    img = cv2.imread(str(cat / ds.images[0].relative_to(cat)))
    assert img.shape == (64, 64, 3)


def test_bad_count_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="--count must be a positive"):
        generate(tmp_path, -1)
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "synth", str(tmp_path / "x"), "--count", "-3"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--count must be a positive" in r.stderr


BASIC_HEADER = ["image", "split", "item_id", "category", "collar", "sleeve", "color", "pattern", "torso:color",
                "torso:pattern", "sleeve:color", "sleeve:pattern", "collar:color"]


def test_basic_profile_keeps_its_columns(cat):
    assert next(csv.reader(open(cat / "attributes.csv"))) == BASIC_HEADER


@pytest.fixture(scope="module")
def detailed(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "d", 400, seed=2, size=64, profile="detailed")


def test_detailed_profile_adds_local_attributes_shared_by_variants(detailed):
    header = next(csv.reader(open(detailed / "attributes.csv")))
    assert header == BASIC_HEADER[:8] + ["fastening", "pocket", "print"] + BASIC_HEADER[8:]
    ds = load_dataset(detailed)
    s = synthetic_schema("detailed")
    assert ds.schema == s and s.names[5:] == ("fastening", "pocket", "print")
    torso = next(r for r in s.regions if r.name == "torso")
    assert set(s.names[5:]) <= set(torso.sources)
    extra = ds.labels[:, 5:]
    for j in range(3):  # every value drawn, "none" the commonest (60% drawn)
        counts = np.bincount(extra[:, j], minlength=3)
        assert counts.min() > 0 and counts.argmax() == 0 and 0.45 < counts[0] / len(extra) < 0.75
    # skewed frequencies: the first-declared colour is drawn far more often than the last
    colors = np.bincount(ds.labels[:, 3], minlength=16)
    assert colors[0] > 3 * max(colors[-1], 1)
    ids = np.array(ds.item_ids)
    for item in sorted(set(ids)):  # colour variants keep the product's details
        rows = np.flatnonzero(ids == item)
        assert (ds.labels[rows][:, 5:] == ds.labels[rows[0], 5:]).all()


@pytest.mark.parametrize("name,value", [("fastening", "buttons"), ("fastening", "zip"), ("pocket", "chest"),
                                        ("pocket", "patch"), ("print", "logo"), ("print", "graphic")])
def test_a_detail_is_drawn_on_the_torso_only(name, value):
    from fashionsearchnet.data.synth import DETAILS, Design, draw_garment

    none = tuple((k, "none") for k in DETAILS)
    plain = Design("tee", "round", "long", "blue", "solid", "blue", "solid", "blue", (0.5, 0.5, 0.5), 0.05, none,
                   "yellow")
    withd = Design(**{**plain.__dict__, "details": tuple((k, value if k == name else "none") for k in DETAILS)})
    a, _, lab = draw_garment(plain, 256, np.random.default_rng(0), figure=False)
    b, _, lab_b = draw_garment(withd, 256, np.random.default_rng(0), figure=False)
    assert (lab == lab_b).all()
    changed = np.abs(a - b).max(axis=2) > 10
    assert changed.sum() > 20  # visible
    assert (lab[changed] == MASK_LABELS["torso"]).all()  # and only on the torso


def test_bad_profile_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="--profile must be one of basic, detailed"):
        generate(tmp_path, 5, profile="fancy")
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "synth", str(tmp_path / "x"), "--count", "3",
                        "--profile", "fancy"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--profile must be one of" in r.stderr


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "h", 400, seed=4, size=64, profile="hard")


def test_hard_profile_adds_fine_attributes_with_unknown_cuffs(hard):
    from fashionsearchnet.data.synth import FINE

    header = next(csv.reader(open(hard / "attributes.csv")))
    assert header == BASIC_HEADER[:8] + ["fastening", "pocket", "print", "fit", "hem", "fabric", "cuff"] + BASIC_HEADER[8:]
    ds = load_dataset(hard)
    s = synthetic_schema("hard")
    assert ds.schema == s and s.names[8:] == tuple(FINE) and len(s.names) == 12
    regions = {r.name: r for r in s.regions}
    assert "cuff" in regions["sleeve"].sources and {"fit", "hem", "fabric"} <= set(regions["torso"].sources)
    rows = list(csv.DictReader(open(hard / "attributes.csv")))
    for r in rows:  # a cuff is unknown exactly when there are no sleeves
        assert (r["cuff"] == "") == (r["sleeve"] == "sleeveless")
    cuff = ds.labels[:, s.attr_index("cuff")]
    assert (cuff < 0).sum() == sum(r["sleeve"] == "sleeveless" for r in rows) > 0
    for j, name in enumerate(FINE):  # every value drawn, the first the commonest
        col = ds.labels[:, 8 + j]
        counts = np.bincount(col[col >= 0], minlength=3)
        assert counts.min() > 0 and counts.argmax() == 0, name


def _fine_design(**fine):
    from fashionsearchnet.data.synth import DETAILS, Design

    values = {"fit": "regular", "hem": "straight", "fabric": "plain", "cuff": "none", **fine}
    return Design("tee", "round", "long", "blue", "solid", "blue", "solid", "blue", (0.5, 0.5, 0.5), 0.05,
                  tuple((k, "none") for k in DETAILS) + tuple(values.items()), "yellow")


@pytest.mark.parametrize("name,value", [("fabric", "knit"), ("fabric", "twill"), ("cuff", "band"), ("cuff", "rolled")])
def test_fabric_and_cuffs_change_only_their_parts(name, value):
    from fashionsearchnet.data.synth import draw_garment

    a, _, lab = draw_garment(_fine_design(), 256, np.random.default_rng(0), figure=False)
    b, _, lab_b = draw_garment(_fine_design(**{name: value}), 256, np.random.default_rng(0), figure=False)
    assert (lab == lab_b).all()
    changed = np.abs(a - b).max(axis=2) > 10
    assert changed.sum() > 100
    if name == "cuff":  # only the sleeve ends
        assert (lab[changed] == MASK_LABELS["sleeve"]).all()
        assert np.flatnonzero(changed.any(1)).min() > np.flatnonzero((lab == MASK_LABELS["sleeve"]).any(1)).mean()
    else:  # the whole garment, nothing else
        assert (lab[changed] > 0).all() and changed[lab == MASK_LABELS["torso"]].mean() > 0.3


def test_fit_and_hem_change_the_silhouette():
    from fashionsearchnet.data.synth import draw_garment

    def garment(**fine):
        return draw_garment(_fine_design(**fine), 256, np.random.default_rng(0), figure=False)[2]

    regular = garment()
    width = lambda lab: (lab[160] > 0).sum()  # noqa: E731 - a row across the torso below the sleeves
    assert width(garment(fit="slim")) < width(regular) < width(garment(fit="loose"))
    torso_rows = np.flatnonzero((regular == MASK_LABELS["torso"]).any(1))
    for hem in ("curved", "split"):
        lab = garment(hem=hem)
        diff_rows = np.flatnonzero((lab != regular).any(1))
        assert len(diff_rows) > 0 and diff_rows.min() > torso_rows.max() - 0.1 * 256  # only near the hem
