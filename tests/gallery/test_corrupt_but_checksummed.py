"""Issue 19 item 7: files whose checksums match but whose content is wrong or mistyped are one-line errors,
never a traceback: the gallery pointer, the gallery manifest, items.json, the stored arrays, the bundle manifest
and ONNX files that are not the bundle's graphs."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.support import gallery_fixtures
from fashionsearchnet.app.cli import main
from fashionsearchnet.errors import FSNError


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _gen(root: Path) -> Path:
    return root / json.loads((root / "CURRENT").read_text())["dir"]


def _set_manifest(root: Path, manifest: dict) -> None:
    raw = json.dumps(manifest).encode()
    (_gen(root) / "gallery.json").write_bytes(raw)
    ptr = json.loads((root / "CURRENT").read_text())
    ptr["manifest_sha256"] = _sha(raw)
    (root / "CURRENT").write_text(json.dumps(ptr))


def _replace(root: Path, name: str, data: bytes) -> None:
    """Replace a generation file and fix up every checksum, so only its content is wrong."""
    (_gen(root) / name).write_bytes(data)
    m = json.loads((_gen(root) / "gallery.json").read_text())
    m["files"][name] = _sha(data)
    _set_manifest(root, m)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _manifest_edit(**fields):
    def edit(root: Path) -> None:
        m = json.loads((_gen(root) / "gallery.json").read_text())
        m.update(fields)
        _set_manifest(root, m)
    return edit


def _items(value) -> callable:
    return lambda root: _replace(root, "items.json", json.dumps(value).encode())


GALLERY_CASES = {
    "pointer is a list": lambda r: (r / "CURRENT").write_text("[1, 2]"),
    "pointer generation is text": lambda r: (r / "CURRENT").write_text(
        json.dumps({**json.loads((r / "CURRENT").read_text()), "generation": "1"})),
    "pointer dir escapes": lambda r: (r / "CURRENT").write_text(
        json.dumps({**json.loads((r / "CURRENT").read_text()), "dir": "../../etc"})),
    "pointer dir is a number": lambda r: (r / "CURRENT").write_text(
        json.dumps({**json.loads((r / "CURRENT").read_text()), "dir": 5})),
    "manifest region_weight text": _manifest_edit(region_weight="abc"),
    "manifest bundle list": _manifest_edit(bundle=[]),
    "manifest hnsw text": _manifest_edit(hnsw={"M": "x", "ef_construction": 40, "ef": 10}),
    "manifest files list": _manifest_edit(files=[]),
    "manifest schema number": _manifest_edit(schema=5),
    "manifest is a list": lambda r: _set_manifest(r, []),
    "items records object": _items({"records": {}, "deleted": []}),
    "items records numbers": _items({"records": [1, 2], "deleted": [False, False]}),
    "items deleted short": lambda r: _replace(r, "items.json", json.dumps(
        {"records": json.loads((_gen(r) / "items.json").read_text())["records"], "deleted": [False]}).encode()),
    "items metadata number": lambda r: _replace(r, "items.json", json.dumps({
        "records": [dict(x, metadata={"price": 3}) for x in json.loads((_gen(r) / "items.json").read_text())["records"]],
        "deleted": json.loads((_gen(r) / "items.json").read_text())["deleted"]}).encode()),
    "probs flat": lambda r: _replace(r, "probs.npy", _npy(np.zeros(20, np.float32))),
    "attr_reps wrong width": lambda r: _replace(r, "attr_reps.npy", _npy(np.zeros((20, 5, 3), np.float32))),
    "boxes as text": lambda r: _replace(r, "attr_boxes.npy", _npy(np.array(["x"] * 20))),
}


@pytest.mark.parametrize("case", sorted(GALLERY_CASES))
def test_mistyped_gallery_files_are_one_line_errors(tmp_path, capsys, case):
    gallery_fixtures.make_gallery(tmp_path / "g", n=20)
    GALLERY_CASES[case](tmp_path / "g")
    capsys.readouterr()
    assert main(["search", str(tmp_path / "g"), "img/00001.jpg", "-k", "3"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err, err


# ---- the bundle --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_and_images(tmp_path_factory, tiny_synth):
    from tests.support.make_tiny_bundle import asset_copy

    b = asset_copy(tmp_path_factory)
    cat = tmp_path_factory.mktemp("c") / "cat"
    cat.mkdir()
    for i in range(3):
        shutil.copy(tiny_synth / "images" / f"{i:06d}.jpg", cat / f"{i}.jpg")
    return b, cat


def _bundle_copy(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    edit(dst, m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def _graph_swap(which: str, data_from):
    def edit(d: Path, m: dict) -> None:
        f = m["graphs"][which]["file"]
        data = data_from(d, m)
        (d / f).write_bytes(data)
        m["files"][f] = _sha(data)
    return edit


BUNDLE_CASES = {
    "backbone is not ONNX": _graph_swap("backbone", lambda d, m: b"this is not a protobuf" * 50),
    "heads is the backbone graph": _graph_swap("heads", lambda d, m: (d / m["graphs"]["backbone"]["file"]).read_bytes()),
    "roi is text": lambda d, m: m.update(roi="0.2"),
    "roi threshold is text": lambda d, m: m["roi"].update(aam_threshold="high"),
    "graphs is a list": lambda d, m: m.update(graphs=[]),
    "graph file escapes": lambda d, m: m["graphs"]["heads"].update(file="../heads.onnx"),
    "method is a number": lambda d, m: m.update(method=5),
    "region_weight text": lambda d, m: m.update(region_weight="0.5"),
    "preprocessing size text": lambda d, m: m.update(preprocessing={**m["preprocessing"], "size": "big"}),
    "files values numbers": lambda d, m: m.update(files={k: 1 for k in m["files"]}),
}


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
def test_mistyped_bundle_files_are_one_line_errors(bundle_and_images, tmp_path, capsys, case):
    src, cat = bundle_and_images
    b = _bundle_copy(src, tmp_path / "b", BUNDLE_CASES[case])
    capsys.readouterr()
    assert main(["index", str(b), str(cat), "--out", str(tmp_path / "g"), "--backend", "ort"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err, err
    from fashionsearchnet.runtime.extractor import FeatureExtractor

    with pytest.raises(FSNError):
        FeatureExtractor(b, backend="ort").extract([cat / "0.jpg"])
