"""fsn export: bundle contents, metadata, dynamic batch, parity errors, fp16, atomic writes, CLI."""
from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import torch

from fashionsearchnet.errors import BundleError, CheckpointError, ParityError, UsageError
from fashionsearchnet.export import graphs as G
from fashionsearchnet.export.parity import TOLERANCE, check_parity
from fashionsearchnet.fileio import sha256_file
from fashionsearchnet.runtime.bundle import FORMAT_VERSION, Bundle

from tests.support.make_tiny_bundle import make_tiny_checkpoint, schema as synthetic_schema


@pytest.fixture(scope="module")
def fp32(tiny_export):
    return tiny_export()


def test_manifest_has_everything_the_runtime_needs(fp32):
    path, run = fp32
    m = json.loads((path / "manifest.json").read_text())
    schema = synthetic_schema()
    assert m["format"] == "fsn-bundle" and m["format_version"] == FORMAT_VERSION
    assert m["schema"] == schema.to_dict()
    assert m["region_pairs"] == [list(p) for p in schema.region_pairs]
    assert m["preprocessing"] == {"size": 64, "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}
    assert m["roi"]["aam_threshold"] == 0.2 and m["roi"]["region_class_threshold"] == 0.1
    assert m["method"] == "fsn" and m["precision"] == "fp32" and m["opset"] == G.OPSET
    assert m["run"]["checkpoint_sha256"] == sha256_file(run / "fsn" / "checkpoint.pt")
    assert set(m["files"]) == {"backbone.onnx", "heads.onnx", "params.npz"}
    for f, digest in m["files"].items():
        assert sha256_file(path / f) == digest
    assert m["parity"]["tolerance"] == TOLERANCE["fp32"]
    assert max(m["parity"]["errors"].values()) < 1e-5  # measured, far below the tolerance
    assert all(g["ok"] for g in m["tensorrt"].values())


def test_params_are_the_checkpoint_prototypes_lam_and_w(fp32):
    path, run = fp32
    from fashionsearchnet.training.checkpoint import Checkpoint

    ck = Checkpoint.load(run / "fsn" / "checkpoint.pt")
    b = Bundle.open(path)
    for a, p in enumerate(ck.prototypes):
        np.testing.assert_array_equal(b.params.prototypes[a], p)
    np.testing.assert_array_equal(b.params.lam, ck.model["lam"].numpy())
    np.testing.assert_array_equal(b.params.W, ck.model["W"].numpy())
    assert b.params.region_weight == 0.3


def test_onnx_metadata_props_repeat_the_manifest_and_batch_is_dynamic(fp32):
    path, _ = fp32
    m = json.loads((path / "manifest.json").read_text())
    for graph, first_input in (("backbone", "images"), ("heads", "conv5")):
        model = onnx.load(str(path / f"{graph}.onnx"))
        props = {p.key: p.value for p in model.metadata_props}
        assert props["fsn.graph"] == graph
        assert json.loads(props["fsn.schema"]) == m["schema"]
        assert json.loads(props["fsn.preprocessing"]) == m["preprocessing"]
        assert json.loads(props["fsn.roi"]) == m["roi"]
        assert props["fsn.method"] == "fsn" and json.loads(props["fsn.format_version"]) == FORMAT_VERSION
        inp = next(i for i in model.graph.input if i.name == first_input)
        dims = inp.type.tensor_type.shape.dim
        assert dims[0].dim_param and not dims[0].HasField("dim_value")  # symbolic batch
        assert all(d.HasField("dim_value") for d in dims[1:])


def test_parity_beyond_tolerance_is_an_error(fp32, tmp_path):
    """Graphs from the bundle vs a model whose heads were changed: ParityError naming the output."""
    from fashionsearchnet.training.checkpoint import load_run

    path, run = fp32
    model, _ = load_run(run / "fsn" / "checkpoint.pt")
    paths = {"backbone": path / "backbone.onnx", "heads": path / "heads.onnx"}
    check_parity(model, paths, 64)  # the exported model itself passes
    with torch.no_grad():
        model.fc10_b.add_(0.05)
    with pytest.raises(ParityError, match=r"heads.onnx: output 'attr_reps' at batch 1 differs from PyTorch by "
                                          r"(\S+) \(tolerance 1e-04") as e:
        check_parity(model, paths, 64)
    # every attr_reps entry moved by exactly 0.05; the error is relative to max(max|torch|, 1), so at most 0.05
    err = float(re.search(r"differs from PyTorch by (\S+) ", str(e.value)).group(1))
    assert 0.01 < err <= 0.05


@pytest.mark.slow
def test_fp16_is_baked_in_and_checked_with_its_own_tolerance(tiny_export):
    path, _ = tiny_export(precision="fp16")
    m = json.loads((path / "manifest.json").read_text())
    assert m["precision"] == "fp16" and m["parity"]["tolerance"] == TOLERANCE["fp16"]
    errs = m["parity"]["errors"]
    assert 0 < max(errs.values()) <= TOLERANCE["fp16"]  # really fp16: not bit-equal to the fp32 reference
    model = onnx.load(str(path / "backbone.onnx"))
    conv_w = {i.name: i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in conv_w.values()
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 at the edges


@pytest.mark.slow
def test_export_is_atomic_and_refuses_foreign_folders(tmp_path, monkeypatch):
    from fashionsearchnet.export import bundle_writer
    from fashionsearchnet.export.exporter import export_run

    make_tiny_checkpoint(tmp_path / "run")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("x")
    with pytest.raises(UsageError, match="not a bundle folder"):
        export_run(tmp_path / "run", foreign)

    def boom(*a, **k):
        raise ParityError("planted")

    monkeypatch.setattr(bundle_writer, "check_parity", boom)
    with pytest.raises(ParityError):
        export_run(tmp_path / "run", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.tmp")]  # temp folder cleaned up


def test_missing_checkpoint_names_the_paths(tmp_path):
    from fashionsearchnet.export.exporter import export_run

    with pytest.raises(CheckpointError, match=r"fsn/checkpoint.pt"):
        export_run(tmp_path / "nothing", tmp_path / "b")


@pytest.mark.slow
def test_cli_export_writes_a_bundle_that_opens(tmp_path, fp32):
    from fashionsearchnet.app.cli import main

    _, run = fp32
    assert main(["export", str(run), "--out", str(tmp_path / "b2"), "--method", "fsn"]) == 0
    b = Bundle.open(tmp_path / "b2")
    assert b.method == "fsn" and b.schema == synthetic_schema()
    # re-export over an existing bundle replaces it atomically
    assert main(["export", str(run / "fsn" / "checkpoint.pt"), "--out", str(tmp_path / "b2")]) == 0
    assert Bundle.open(tmp_path / "b2").sha256 != b.sha256  # new manifest (new creation time)
