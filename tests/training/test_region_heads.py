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
    if m.region_heads is not None and spec.kind == "crop":  # a non-trivial standardisation
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


@pytest.mark.parametrize("spec", [RegionHeadSpec("conv3", 3, 8), RegionHeadSpec("pool2", 3, 8, kind="attention")],
                         ids=["crop", "attention"])
def test_checkpoint_with_region_heads_round_trips_and_exports_in_parity(tiny_synth, tmp_path, spec):
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import Preprocessing, read_image
    from fashionsearchnet.export.exporter import export_run
    from fashionsearchnet.runtime.extractor import FeatureExtractor
    from fashionsearchnet.training.checkpoint import Checkpoint, load_run
    from fashionsearchnet.training.extract import extract_arrays
    from tests.support.tiny_runs import tiny_run

    run = tiny_run(tmp_path / "run", tiny_synth)
    ck = Checkpoint.load(run / "fsn")
    torch.manual_seed(3)
    m = FashionSearchNet(ck.schema, ck.preset, "fsn", region_head=spec)
    state = {**ck.model, **{k: v for k, v in m.state_dict().items() if k.startswith("region_heads.")}}
    dataclasses.replace(ck, model=state, region_head=spec.to_dict()).save(run / "fsn" / "checkpoint.pt")
    back = Checkpoint.load(run / "fsn")
    assert back.region_head == spec.to_dict() and back.build_model().region_spec == spec
    export_run(run, tmp_path / "b")
    from fashionsearchnet.runtime.bundle import Bundle

    assert Bundle.open(tmp_path / "b").manifest["run"]["region_head"] == spec.to_dict()
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


def _area(x: np.ndarray, n: int) -> np.ndarray:
    """(B,C,s,s) -> (B,C,n,n) by OpenCV's INTER_AREA (the reference for the attention heads' fine maps)."""
    import cv2

    return np.stack([[cv2.resize(ch, (n, n), interpolation=cv2.INTER_AREA) for ch in img] for img in x])


def _space_to_depth(x: np.ndarray, k: int) -> np.ndarray:
    b, c, n, _ = x.shape
    h = n // k
    return x.reshape(b, c, h, k, h, k).transpose(0, 1, 3, 5, 2, 4).reshape(b, c * k * k, h, h)


def test_attention_region_reps_by_hand():
    """The packed early map (image and conv1 area-resampled to 21 x 21, space-to-depth on conv5's 7 x 7 grid,
    normalised region maps) and each pair's attention head, computed in numpy from the backbone's maps."""
    spec = RegionHeadSpec("pool2", 3, 8, kind="attention")
    m = _model(spec)
    with torch.no_grad():
        for head in m.region_heads.pairs:
            for buf in (head.coarse_mean, head.fine_mean):
                buf.uniform_(-0.2, 0.2)
            for buf in (head.coarse_scale, head.fine_scale):
                buf.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 64, 64)
    sch = m.schema
    A = len(sch.attributes)
    boxes = torch.tensor([[0.0, 0.0, 6.0, 6.0]]).repeat(2, A + len(sch.regions), 1)
    boxes[:, A:] = torch.tensor([[1.0, 0.0, 3.0, 2.0], [4.0, 2.0, 6.0, 5.0], [0.0, 3.0, 6.0, 6.0]])
    with torch.no_grad():
        feats, *_ = m.backbone(x)
        _, reg = m.heads(feats, boxes)
        o = {k: v.numpy() for k, v in m.forward_backbone(x).items()}
    k, n = 3, 21
    fine = np.concatenate([_area(x.numpy(), n), _area(o["conv1"], n)], axis=1)  # (2, 3 + C1, 21, 21)
    coarse = np.concatenate([o["pool2"], _space_to_depth(fine[:, :3], k)], axis=1)
    rm = o["region_maps"]
    prior = np.clip(rm / np.maximum(rm.max(axis=(2, 3), keepdims=True), 1e-6), -1, 1)
    names = [r.name for r in sch.regions]
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731

    def conv1x1(conv, z):  # (B,C,h,w) -> (B,O,h,w)
        w = conv.weight.detach().numpy()[:, :, 0, 0]
        return np.einsum("oc,bchw->bohw", w, z) + conv.bias.detach().numpy()[None, :, None, None]

    for p, (region, _attr) in enumerate(sch.region_pairs):
        head = m.region_heads.pairs[p]
        bx = boxes[0, A + names.index(region)].numpy().astype(int)
        inside = np.zeros((2, 1, 7, 7))
        inside[:, :, bx[1]:bx[3] + 1, bx[0]:bx[2] + 1] = 1.0
        xc = (coarse - head.coarse_mean.numpy()) / head.coarse_scale.numpy()
        xf = (fine - head.fine_mean.numpy()) / head.fine_scale.numpy()
        r = names.index(region)
        sc = conv1x1(head.score2, relu(conv1x1(head.score1, np.concatenate([xc, prior[:, r:r + 1], inside], 1))))
        up = sc.repeat(3, axis=2).repeat(3, axis=3)
        s = up + conv1x1(head.local2, relu(conv1x1(head.local1, np.concatenate([xf, up], 1))))
        e = np.exp(s - s.max(axis=(2, 3), keepdims=True))
        att = e / e.sum(axis=(2, 3), keepdims=True)  # (2,1,21,21)
        att_c = att.reshape(2, 1, 7, 3, 7, 3).sum(axis=(3, 5))
        pooled = np.concatenate([(xc * att_c).sum(axis=(2, 3)), (xf * att).sum(axis=(2, 3))], axis=1)
        h = relu(pooled @ head.fc1.weight.detach().numpy().T + head.fc1.bias.detach().numpy())
        want = h @ head.fc2.weight.detach().numpy().T + head.fc2.bias.detach().numpy()
        np.testing.assert_allclose(reg[:, p].numpy(), want, rtol=1e-3, atol=1e-4)


def test_attention_fit_finds_the_part_by_a_local_cue_where_the_box_average_reads_the_torso():
    """Planted maps on a 7 x 7 grid (21 x 21 fine cells): the torso's colour everywhere, a part in its own colour
    on one conv5 cell (3 x 3 fine cells) of a 3 x 3-cell region box, and a conv1 channel that marks the part's cells.
    85% of the rows are one-tone. The fitted attention head's representation is nearest to the part's value on
    held-out two-tone rows; the mean colour over the box (what a box crop reads) answers the torso's."""
    from fashionsearchnet.training.calibrate_region_heads import specificity
    from fashionsearchnet.training.region_attention import AttentionRegionHeads, fit_attention_heads, pack_early

    rng = np.random.default_rng(0)
    colours = np.eye(3, dtype=np.float32)

    def rows(count):
        torso = rng.integers(0, 3, count)
        part = np.where(rng.random(count) < 0.15, (torso + rng.integers(1, 3, count)) % 3, torso)
        image = colours[torso][:, :, None, None] + rng.normal(0, 0.1, (count, 3, 21, 21)).astype(np.float32)
        conv1 = rng.normal(0, 0.1, (count, 4, 21, 21)).astype(np.float32)
        regions = np.zeros((count, 1, 7, 7), np.float32)
        boxes = np.zeros((count, 1, 4), np.float32)
        for i in range(count):
            x0, y0 = rng.integers(0, 5, 2)
            boxes[i, 0] = (x0, y0, x0 + 2, y0 + 2)
            regions[i, 0, y0:y0 + 3, x0:x0 + 3] = 1.0
            fx, fy = 3 * (x0 + rng.integers(0, 3)), 3 * (y0 + rng.integers(0, 3))  # one conv5 cell of the box
            image[i, :, fy:fy + 3, fx:fx + 3] = colours[part[i]][:, None, None]
            conv1[i, 0, fy:fy + 3, fx:fx + 3] += 1.0
        context = rng.normal(0, 1, (count, 4, 7, 7)).astype(np.float32)
        packed = pack_early(*(torch.from_numpy(a) for a in (context, image, conv1, regions)), 3)
        box_mean = np.stack([image[i, :, 3 * int(b[1]):3 * int(b[3]) + 3, 3 * int(b[0]):3 * int(b[2]) + 3].mean((1, 2))
                             for i, b in enumerate(boxes[:, 0])])
        return packed, torch.from_numpy(boxes), part[:, None], (part != torso)[:, None], box_mean[:, None]

    pf, bf, lf, tf, mf = rows(1500)
    pv, bv, lv, tv, mv = rows(600)
    torch.manual_seed(0)
    heads = AttentionRegionHeads([0], 4, 4, 3, 16, 8)
    fit_attention_heads(heads, pf, bf, lf, tf, [3], seed=0, steps=400)
    with torch.no_grad():
        got = specificity(heads(pf, bf).numpy(), lf, heads(pv, bv).numpy(), lv, tv, [("sleeve", "color")], [3])
    box_average = specificity(mf, lf, mv, lv, tv, [("sleeve", "color")], [3])
    assert got["sleeve:color"] >= 90.0
    assert box_average["sleeve:color"] <= 10.0


def test_region_head_kind_defaults_to_crop_and_an_unknown_kind_is_refused():
    from fashionsearchnet.errors import CheckpointError

    assert RegionHeadSpec.from_dict({"layer": "pool2", "pool": 6, "hidden": 64}).kind == "crop"  # older checkpoints
    spec = RegionHeadSpec("pool2", 3, 64, kind="attention")
    assert RegionHeadSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(CheckpointError, match="ring.*crop, attention"):
        RegionHeadSpec.from_dict({"layer": "pool2", "pool": 3, "hidden": 8, "kind": "ring"})


def test_mirrored_fit_inputs_are_the_inputs_of_the_mirrored_photos(tiny_synth, tmp_path):
    """Calibration fits the region heads on each fit row and its mirrored image as well (FIT_MIRRORED): the mirrored
    inputs of a row equal the plain inputs of the same photo mirrored and saved losslessly (the backbone and the
    boxes run on the mirrored image, not a mirrored copy of the maps)."""
    import cv2

    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import Preprocessing
    from fashionsearchnet.runtime.roi_settings import RoiSettings
    from fashionsearchnet.training.calibrate_region_heads import pair_inputs

    ds = load_dataset(tiny_synth)
    rows = np.arange(0, 40, 3)
    mirrored_paths = []
    for i in rows:
        p = tmp_path / f"{i}.png"
        assert cv2.imwrite(str(p), cv2.flip(cv2.imread(str(ds.images[int(i)]), cv2.IMREAD_COLOR), 1))
        mirrored_paths.append(str(p))
    images = list(ds.images)
    for i, p in zip(rows, mirrored_paths):
        images[int(i)] = p
    flipped_ds = dataclasses.replace(ds, images=images)
    specs = [RegionHeadSpec("pool2", 3, kind="attention"), RegionHeadSpec("pool2", 3)]
    m = _model(None)
    pre = Preprocessing(PRESETS["tiny"].input_size)
    got, got_own = pair_inputs(m, ds, rows, pre, RoiSettings(), specs, batch_size=5, mirrored=True)
    want, want_own = pair_inputs(m, flipped_ds, rows, pre, RoiSettings(), specs, batch_size=5)
    plain, _ = pair_inputs(m, ds, rows, pre, RoiSettings(), specs, batch_size=5)
    np.testing.assert_allclose(got_own, want_own, atol=1e-4)
    for spec in specs:
        for g, w, p in zip(got[spec], want[spec], plain[spec]):
            np.testing.assert_allclose(g.float().numpy(), w.float().numpy(), atol=2e-3)
        assert np.abs(got[spec][0].float().numpy() - plain[spec][0].float().numpy()).max() > 1e-2
