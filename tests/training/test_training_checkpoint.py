"""The checkpoint types: round trip, the checksum header, atomic writes, one-line errors, files from before the type."""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pytest
import torch

from fashionsearchnet.app.cli import main
from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.synth import synthetic_schema
from fashionsearchnet.errors import CheckpointError
from fashionsearchnet.training.checkpoint import HEADER, Checkpoint, StageState, load_run
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.presets import PRESETS


def _tiny(**fields) -> Checkpoint:
    return Checkpoint.untrained(synthetic_schema(), PRESETS["tiny"], "fsn", 4, 0.5, **fields)


def _same(a: Checkpoint, b: Checkpoint) -> None:
    assert (a.schema, a.preset, a.preprocessing, a.method) == (b.schema, b.preset, b.preprocessing, b.method)
    assert (a.region_weight, a.metrics, a.config, a.train_rows, a.data) == \
        (b.region_weight, b.metrics, b.config, b.train_rows, b.data)
    assert list(a.model) == list(b.model) and all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    assert len(a.prototypes) == len(b.prototypes)
    assert all(np.array_equal(p, q) and q.dtype == np.float32 for p, q in zip(a.prototypes, b.prototypes))


def test_round_trip_keeps_every_field_and_the_model_computes_the_same(tmp_path):
    ck = _tiny(metrics={"stage1": [{"loss": 1.5}]}, config={"seed": 4}, train_rows=12, data="/some/catalogue")
    path = ck.save(tmp_path / "run" / "fsn" / "checkpoint.pt")
    back = Checkpoint.load(tmp_path / "run" / "fsn")  # the method folder is accepted too
    _same(ck, back)
    assert back.path == path
    x = torch.rand(2, 3, 64, 64)
    model, meta = load_run(path)
    ref = FashionSearchNet(ck.schema, ck.preset, "fsn").eval()
    ref.load_state_dict(ck.model)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_backbone(x)["logits"], ref.forward_backbone(x)["logits"],
                                   rtol=0, atol=0)
    assert meta["region_weight"] == 0.5 and meta["data"] == "/some/catalogue" and meta["path"] == path


def test_file_is_the_header_with_the_sha256_of_the_torch_bytes_after_it(tmp_path):
    path = _tiny().save(tmp_path / "checkpoint.pt")
    data = path.read_bytes()
    line, body = data.split(b"\n", 1)
    assert line.startswith(HEADER) and line[len(HEADER):].decode() == hashlib.sha256(body).hexdigest()
    stored = torch.load(io.BytesIO(body), weights_only=False)  # the payload is a plain torch file
    assert stored["format"] == 1 and stored["method"] == "fsn" and "train_rows" not in stored


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = _tiny(metrics={"n": 1}).save(tmp_path / "checkpoint.pt")
    before = path.read_bytes()

    def crash(fd):  # the process dies after the bytes were written, before the rename
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated crash"):
        _tiny(metrics={"n": 2}).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and Checkpoint.load(path).metrics == {"n": 1}


@pytest.mark.parametrize("damage, needle", [
    (lambda b: b[:-100], "sha256 mismatch"),  # truncated
    (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], "sha256 mismatch"),  # one bit flipped in the body
    (lambda b: b"not a checkpoint at all", "corrupt checkpoint"),  # no header, not a torch file
])
def test_damaged_file_is_a_one_line_error_naming_it(tmp_path, damage, needle):
    path = _tiny().save(tmp_path / "run" / "fsn" / "checkpoint.pt")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=needle) as e:
        Checkpoint.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_damaged_checkpoint_fails_the_cli_without_traceback(tmp_path, capsys):
    path = _tiny().save(tmp_path / "run" / "fsn" / "checkpoint.pt")
    b = path.read_bytes()
    path.write_bytes(b[:-1] + bytes([b[-1] ^ 1]))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256 mismatch" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bundle").exists()


def test_missing_file_and_missing_fields(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found; train first"):
        Checkpoint.load(tmp_path / "nothing.pt")
    st = StageState(2, 1, 3, {}, {"state": {}}, {"loss": 1.0}, [], method="fsn")
    st.save(tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match=r"field 'schema' missing; this is not a finished run"):
        Checkpoint.load(tmp_path / "state.pt")  # a state file is not a finished method


def test_checkpoint_written_before_the_type_loads(tmp_path):
    """The dict the trainer and the test helpers wrote with a bare torch.save (no header, no checksum)."""
    schema, preset = synthetic_schema(), PRESETS["tiny"]
    torch.manual_seed(4)
    model = FashionSearchNet(schema, preset, "fsn").eval()
    protos = [np.full((len(a.values), preset.rep_dim), i, np.float64) for i, a in enumerate(schema.attributes)]
    old = {"format": 1, "schema": schema.to_dict(), "preset": preset.to_dict(),
           "preprocessing": Preprocessing(preset.input_size).to_dict(), "method": "fsn", "model": model.state_dict(),
           "prototypes": protos, "region_weight": 0.5, "metrics": {"stage1": [{"loss": 2.0}]},
           "config": {"preset": "tiny"}, "train_rows": 30, "data": "/cat"}
    (tmp_path / "fsn").mkdir()
    torch.save(old, tmp_path / "fsn" / "checkpoint.pt")
    ck = Checkpoint.load(tmp_path / "fsn")
    assert ck.train_rows == 30 and ck.data == "/cat" and ck.metrics == old["metrics"] and ck.region_weight == 0.5
    assert all(torch.equal(ck.model[k], v) for k, v in model.state_dict().items())
    assert [p.dtype for p in ck.prototypes] == [np.float32] * len(protos) and ck.prototypes[2][0, 0] == 2.0
    # saved again, it has the header and the same content
    again = Checkpoint.load(ck.save(tmp_path / "new" / "checkpoint.pt"))
    _same(ck, again)
    # the oldest layout: no region weight stored (scored with 0.3 then), no train_rows/data
    for key in ("region_weight", "train_rows", "data"):
        del old[key]
    torch.save(old, tmp_path / "fsn" / "checkpoint.pt")
    ck = Checkpoint.load(tmp_path / "fsn")
    assert (ck.region_weight, ck.train_rows, ck.data) == (0.3, None, None)
    assert ck.whole_map_pool == "sample"  # no_aam of then sampled a bilinear crop of the whole map
    assert set(ck.to_dict()) == set(old) | {"region_weight", "whole_map_pool"}


def test_stage_state_round_trip_and_old_state_file(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    st = StageState(3, 2, 5, model.state_dict(), opt.state_dict(), {"loss": 4.0, "_steps": 2.0}, [{"loss": 1.0}],
                    method="fsn", stage2_metrics=[{"loss": 9.0}])
    st.save(tmp_path / "state.pt")
    back = StageState.load(tmp_path / "state.pt")
    assert (back.stage, back.epoch, back.step, back.running, back.metrics, back.method, back.stage2_metrics) == \
        (3, 2, 5, st.running, st.metrics, "fsn", st.stage2_metrics)
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(back.optimizer)
    torch.testing.assert_close(opt2.state_dict()["state"][0]["momentum_buffer"],
                               opt.state_dict()["state"][0]["momentum_buffer"], rtol=0, atol=0)
    # a stage-1 state file as the trainer wrote it before the type: bare torch.save, no method
    torch.save({"format": 1, "stage": 1, "epoch": 1, "step": 0, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "running": {}, "metrics": [{"loss": 3.0}]}, tmp_path / "old.pt")
    old = StageState.load(tmp_path / "old.pt")
    assert (old.stage, old.epoch, old.step, old.method, old.stage2_metrics) == (1, 1, 0, None, None)
    assert set(old.to_dict()) == {"format", "stage", "epoch", "step", "model", "optimizer", "running", "metrics"}
