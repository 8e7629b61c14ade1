"""fsn demo: every step builds, the report shows the example searches, a rerun reuses what exists."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time

import pytest

from fashionsearchnet.app.cli import main
from fashionsearchnet.app.demo.pipeline import _fresh, build
from fashionsearchnet.data.dataset import load_dataset


def test_demo_builds_every_step_and_writes_the_report(kiosk_demo):
    res, cfg = kiosk_demo
    assert set(res.steps) == {"data", "run", "bundle", "gallery", "report"}
    assert not any(v["reused"] for v in res.steps.values())
    for sub in ("data/attributes.csv", "run/fsn/checkpoint.pt", "bundle/manifest.json", "gallery/CURRENT"):
        assert (res.out / sub).is_file(), sub
    page = res.report.read_text(encoding="utf-8")
    assert page.count("<section><h2>") == 3 + 1  # photo, attribute change, region change, how to serve
    assert "--set color=" in page and re.search(r"--set \w+:\w+=\w+", page)  # attribute and region examples
    # every result is a picture with its distance; the query picture is inline too (self-contained page)
    assert page.count('<figure class="r') == 3 * cfg.k
    assert page.count("data:image/jpeg;base64,") == 3 * cfg.k + 3
    assert "fsn serve" in page and "http://" not in page.replace("http://127.0.0.1:8080/", "")


def test_demo_rerun_reuses_everything_and_prints_how_to_serve(kiosk_demo, capsys):
    res, cfg = kiosk_demo
    t0 = time.perf_counter()
    rc = main(["demo", "--out", str(res.out), "--count", str(cfg.count), "--size", str(cfg.size), "--seed", str(cfg.seed),
               "--preset", cfg.preset, "--epochs", ",".join(map(str, cfg.epochs)), "--lr", str(cfg.lr),
               "--no-reference"])
    took = time.perf_counter() - t0
    assert rc == 0
    out = capsys.readouterr().out
    assert "data reused, run reused, bundle reused, gallery reused" in out
    assert str(res.report) in out and f"fsn serve {res.gallery}" in out
    assert took < 30


def test_demo_rebuilds_only_what_is_damaged(kiosk_demo, tmp_path):
    res, cfg = kiosk_demo
    copy = tmp_path / "demo"
    shutil.copytree(res.out, copy)
    (copy / "gallery" / "CURRENT").unlink()
    again = build(copy, cfg, reference=None)
    assert [k for k, v in again.steps.items() if not v["reused"]] == ["gallery", "report"]
    # a changed training setting invalidates the run (and so what follows it), not the catalogue
    state = json.loads((copy / "demo.json").read_text())
    other = dataclasses.replace(cfg, lr=cfg.lr * 2)
    assert _fresh(state, "data", other, lambda: True) and not _fresh(state, "run", other, lambda: True)
    assert _fresh(state, "run", cfg, lambda: True) and not _fresh(state, "run", cfg, lambda: False)


def test_demo_refuses_a_too_small_catalogue(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--count", "10"]) == 2
    assert "--count 10" in capsys.readouterr().err


def test_demo_answers_with_a_reference_bundle_and_still_trains(kiosk_demo, tiny_bundle, tmp_path):
    """With a reference bundle (here the checked-in tiny one) a regional catalogue is synthesised and indexed with
    it, and the report's searches and the kiosk use that gallery; the fresh model is still trained, exported and
    indexed."""
    res, cfg = kiosk_demo
    copy = tmp_path / "demo"
    shutil.copytree(res.out, copy)
    again = build(copy, cfg, reference=tiny_bundle)
    assert [k for k, v in again.steps.items() if not v["reused"]] == ["reference-data", "reference", "report"]
    ref_ds = load_dataset(copy / "reference-data")  # reference_count 80, no training split (whole designs split)
    assert len(ref_ds.indices("train")) == 0 and len(ref_ds.indices("gallery")) + len(ref_ds.indices("query")) == 80
    assert again.gallery == copy / "reference-gallery" and again.reference == tiny_bundle
    data = json.loads((copy / "report.json").read_text())
    assert data["model"]["reference"] and data["model"]["bundle"] == str(tiny_bundle)
    assert data["gallery"] == str(copy / "reference-gallery")
    assert "answered by the reference bundle" in again.report.read_text(encoding="utf-8")
    # without a reference, the fresh model answers
    plain = build(copy, cfg, reference=None)
    assert plain.gallery == copy / "gallery" and not json.loads((copy / "report.json").read_text())["model"]["reference"]


def test_the_shipped_reference_bundle_opens_and_its_model_card_names_its_checksums():
    """The reference bundle in the package (app/demo/reference/, when shipped) passes the bundle's own checks
    (checksums of every file) and its MODEL_CARD.md names the sha256 of each file, so a reader can tell which
    bundle the card describes."""
    import hashlib

    from fashionsearchnet.app.demo.pipeline import packaged_reference
    from fashionsearchnet.runtime.bundle import Bundle

    ref = packaged_reference()
    if ref is None:
        pytest.skip("no reference bundle shipped in app/demo/reference/")
    Bundle.open(ref)
    card = (ref / "MODEL_CARD.md").read_text(encoding="utf-8")
    for name in ("manifest.json", "backbone.onnx", "heads.onnx", "params.npz"):
        assert hashlib.sha256((ref / name).read_bytes()).hexdigest() in card, name
