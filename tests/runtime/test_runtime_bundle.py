"""Bundle.open: verified files, format version, missing graph, params shapes; sha256 identifies the bundle."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.errors import BundleError
from fashionsearchnet.runtime.bundle import Bundle

from tests.support.make_tiny_bundle import schema


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    src = tiny_bundle
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def test_open_exposes_schema_preprocessing_params_and_digest(bundle_copy):
    b = Bundle.open(bundle_copy)
    assert b.schema == schema()
    assert b.preprocessing == Preprocessing(64)
    assert b.method == "fsn" and b.precision == "fp32"
    assert [p.shape for p in b.params.prototypes] == [(6, 16), (5, 16), (4, 16), (16, 16), (4, 16)]
    assert b.params.lam.shape == (6, 5) and b.params.W.shape == (6, 80, 32)
    assert b.sha256 == hashlib.sha256((bundle_copy / "manifest.json").read_bytes()).hexdigest()
    assert b.graph_path("heads").name == "heads.onnx"


def test_changed_file_is_a_sha_mismatch_naming_it(bundle_copy):
    p = bundle_copy / "heads.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"heads.onnx: sha256 mismatch"):
        Bundle.open(bundle_copy)


def test_newer_format_is_refused_clearly(bundle_copy):
    mp = bundle_copy / "manifest.json"
    m = json.loads(mp.read_text())
    m["format_version"] = 99
    mp.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"format_version 99 is newer than this runtime reads \(1\)"):
        Bundle.open(bundle_copy)


def test_missing_graph_names_the_file(bundle_copy):
    (bundle_copy / "backbone.onnx").unlink()
    with pytest.raises(BundleError, match=r"backbone.onnx: missing from the bundle"):
        Bundle.open(bundle_copy)


def test_graph_not_listed_in_manifest(bundle_copy):
    mp = bundle_copy / "manifest.json"
    m = json.loads(mp.read_text())
    del m["files"]["heads.onnx"]
    mp.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"heads.onnx has no sha256"):
        Bundle.open(bundle_copy)


def test_not_a_bundle_and_bad_json(tmp_path, bundle_copy):
    with pytest.raises(BundleError, match="manifest.json: missing"):
        Bundle.open(tmp_path)
    (bundle_copy / "manifest.json").write_text("{\n  oops")
    with pytest.raises(BundleError, match=r"manifest.json: line 2: invalid JSON"):
        Bundle.open(bundle_copy)
    (bundle_copy / "manifest.json").write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(BundleError, match=r"manifest.json: line \?: invalid JSON"):
        Bundle.open(bundle_copy)


def test_params_with_wrong_shapes_are_refused(bundle_copy):
    from fashionsearchnet.fileio import sha256_file

    with np.load(bundle_copy / "params.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["lam"] = arrays["lam"][:, :3]
    np.savez(bundle_copy / "params.npz", **arrays)
    mp = bundle_copy / "manifest.json"
    m = json.loads(mp.read_text())
    m["files"]["params.npz"] = sha256_file(bundle_copy / "params.npz")
    mp.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"lam has shape \(6, 3\), expected \(6, 5\)"):
        Bundle.open(bundle_copy)
