"""Region heads (training/region_head.py): region representations from an early map at the region boxes, computed
by hand; the fit learns the part's value where a torso-like feature would answer the torso's; the checkpoint
round trip and ONNX Runtime vs PyTorch parity of a model with region heads."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fashionsearchnet.training.model import FashionSearchNet, roi_pool
from fashionsearchnet.training.presets import PRESETS
from fashionsearchnet.training.region_head import RegionHeadSpec, RegionHeads, fit_region_heads
from tests.support.schemas import four_attribute_region_schema


def _model(spec: RegionHeadSpec | None, seed: int = 0) -> FashionSearchNet:
    torch.manual_seed(seed)
    m = FashionSearchNet(four_attribute_region_schema(), PRESETS["tiny"], "fsn", region_head=spec).eval()
    if m.region_heads is not None:  # a non-trivial standardisation
        with torch.no_grad():
            m.region_heads.mean.uniform_(-0.2, 0.2)
            m.region_heads.scale.uniform_(0.5, 2.0)
    return m


def test_region_reps_are_the_head_on_the_early_map_crop_by_hand():
    spec = RegionHeadSpec("pool2", 3, 8)
    m = _model(spec)
    plain = _model(None)
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("region_heads.")})
    x = torch.randn(2, 3, 64, 64)
    sch = m.schema
    A, R = len(sch.attributes), len(sch.regions)
    boxes = torch.tensor([[0.0, 0.0, 6.0, 6.0]]).repeat(2, A + R, 1)
    boxes[:, A:] = torch.tensor([[1.0, 0.5, 3.0, 2.0], [4.0, 2.0, 6.0, 5.5], [0.0, 3.0, 6.0, 6.0]])  # regions
    with torch.no_grad():
        feats, *_ = m.backbone(x)
        attr, reg = m.heads(feats, boxes)
        o = m.forward_backbone(x)
        plain_attr, _ = plain.heads(plain.backbone(x)[0], boxes)
    assert feats.shape[1] == PRESETS["tiny"].conv5 + PRESETS["tiny"].conv2  # conv5, then pool2's channels
    np.testing.assert_allclose(attr.numpy(), plain_attr.numpy(), atol=1e-6)  # attribute heads untouched
    rh = m.region_heads
    names = [r.name for r in sch.regions]
    for p, (region, _attr) in enumerate(sch.region_pairs):
        box = boxes[:, A + names.index(region)][:, None]
        crop = roi_pool(o["pool2"], box, 3)[:, 0].flatten(1).numpy()  # (2, C*9)
        z = (crop - rh.mean[p].numpy()) / rh.scale[p].numpy()
        h = np.maximum(z @ rh.w1[p].detach().numpy() + rh.b1[p].detach().numpy(), 0.0)
        want = h @ rh.w2[p].detach().numpy() + rh.b2[p].detach().numpy()
        np.testing.assert_allclose(reg[:, p].numpy(), want, rtol=1e-4, atol=1e-5)


def test_fit_reads_the_part_where_the_torso_would_answer_otherwise():
    """Planted crops: features 0-2 one-hot of the part's value, 3-5 of the torso's (stronger), noise. 85% of the
    rows are one-tone (part = torso), so the torso features predict most labels; the balanced fit must still read
    the part: on held-out two-tone rows the nearest prototype is the part's value."""
    from fashionsearchnet.training.calibrate_region_heads import specificity

    rng = np.random.default_rng(0)

    def rows(n):
        torso = rng.integers(0, 3, n)
        part = np.where(rng.random(n) < 0.15, (torso + rng.integers(1, 3, n)) % 3, torso)
        x = rng.normal(0, 0.3, (n, 1, 12)).astype(np.float32)
        x[np.arange(n), 0, part] += 1.0
        x[np.arange(n), 0, 3 + torso] += 2.0
        return torch.from_numpy(x), part[:, None], (part != torso)[:, None]

    xf, lf, tf = rows(3000)
    xv, lv, tv = rows(1500)
    heads = RegionHeads(1, 12, 16, 4)
    fit_region_heads(heads, xf, lf, tf, [3], seed=0, steps=600)
    heads.eval()
    with torch.no_grad():
        got = specificity(heads(xf).numpy(), lf, heads(xv).numpy(), lv, tv, [("sleeve", "color")], [3])
    torso_only = specificity(xf[:, :, 3:6].numpy(), lf, xv[:, :, 3:6].numpy(), lv, tv, [("sleeve", "color")], [3])
    assert got["sleeve:color"] >= 90.0
    assert torso_only["sleeve:color"] <= 10.0  # what a non-regional feature gives on these rows


def test_checkpoint_with_region_heads_round_trips_and_exports_in_parity(tiny_synth, tmp_path):
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import Preprocessing, read_image
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.runtime.extractor import FeatureExtractor
    from fashionsearchnet.training.checkpoint import Checkpoint, load_run
    from fashionsearchnet.training.extract import extract_arrays
    from tests.support.tiny_runs import tiny_run

    run = tiny_run(tmp_path / "run", tiny_synth)
    ck = Checkpoint.load(run / "fsn")
    spec = RegionHeadSpec("conv3", 3, 8)
    torch.manual_seed(3)
    m = FashionSearchNet(ck.schema, ck.preset, "fsn", region_head=spec)
    state = {**ck.model, **{k: v for k, v in m.state_dict().items() if k.startswith("region_heads.")}}
    dataclasses.replace(ck, model=state, region_head=spec.to_dict()).save(run / "fsn" / "checkpoint.pt")
    back = Checkpoint.load(run / "fsn")
    assert back.region_head == spec.to_dict() and back.build_model().region_spec == spec
    export_run(run, tmp_path / "b")
    paths = [str(p) for p in load_dataset(tiny_synth).images[:6]]
    with FeatureExtractor(tmp_path / "b", backend="ort-cpu") as fx:
        f = fx.extract(paths, batch_size=4)
    model, meta = load_run(run / "fsn")
    pre = Preprocessing(meta["preset"].input_size)
    ref = extract_arrays(model, np.stack([pre.resize(read_image(p)) for p in paths]), pre, batch_size=3)
    for key, got in (("attr_reps", f.attr_reps), ("region_reps", f.region_reps)):
        tol = 1e-4 * max(1.0, float(np.abs(ref[key]).max()))
        assert np.abs(got - ref[key]).max() <= tol, key
    plain = Checkpoint.load(run / "fsn")
    plain_model = dataclasses.replace(plain, region_head=None, model=ck.model).build_model()
    old = extract_arrays(plain_model, np.stack([pre.resize(read_image(p)) for p in paths]), pre, batch_size=3)
    np.testing.assert_allclose(old["attr_reps"], ref["attr_reps"], atol=1e-5)  # only region reps change
    assert np.abs(old["region_reps"] - ref["region_reps"]).max() > 1e-3


def test_a_bad_region_head_field_is_a_one_line_error(tiny_synth, tmp_path):
    from fashionsearchnet.errors import CheckpointError
    from fashionsearchnet.training.checkpoint import Checkpoint
    from tests.support.tiny_runs import tiny_run

    run = tiny_run(tmp_path / "run", tiny_synth)
    ck = Checkpoint.load(run / "fsn")
    dataclasses.replace(ck, region_head={"layer": "conv9", "pool": 3, "hidden": 8}).save(run / "fsn" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="conv9.*pool2, conv3.*fsn calibrate"):
        Checkpoint.load(run / "fsn").build_model()
