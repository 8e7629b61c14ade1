"""Model graphs: ROI pooling, AAMs, region maps, heads, global representation parity, AlexNet weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fashionsearchnet.data.synth import synthetic_schema
from fashionsearchnet.errors import CheckpointError, UsageError
from fashionsearchnet.runtime import roi
from fashionsearchnet.search.projection import global_representation as np_global
from fashionsearchnet.training.model import REGION_CONFIDENCE, FashionSearchNet, global_representation, roi_pool
from fashionsearchnet.training.presets import PRESETS


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FashionSearchNet(synthetic_schema(), PRESETS["tiny"], "fsn").eval()


def test_roi_pool_samples_bilinear_points_by_hand():
    feat = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)  # value = c*30 + y*6 + x
    boxes = torch.tensor([[[1.0, 0.0, 4.0, 3.0], [0.5, 1.0, 0.5, 1.0]]])
    out = roi_pool(feat, boxes, 3)
    assert out.shape == (1, 2, 2, 3, 3)
    for c in range(2):
        for i, y in enumerate((0.0, 1.5, 3.0)):
            for j, x in enumerate((1.0, 2.5, 4.0)):  # linear field: bilinear sampling is exact
                assert float(out[0, 0, c, i, j]) == pytest.approx(c * 30 + y * 6 + x, abs=1e-4)
    assert torch.allclose(out[0, 1, 0], torch.full((3, 3), 6 + 0.5))


def test_global_representation_numpy_equals_torch(model):
    rng = np.random.default_rng(0)
    reps = rng.normal(size=(7, 5, 16)).astype(np.float32)
    lam = rng.normal(size=(6, 5)).astype(np.float32)
    W = rng.normal(size=(6, 80, 32)).astype(np.float32)
    for astar in range(6):
        t = global_representation(torch.from_numpy(reps), torch.from_numpy(lam), torch.from_numpy(W), astar).numpy()
        n = np_global(reps, lam, W, astar)
        hand = (reps[0] * lam[astar][:, None]).reshape(-1) @ W[astar]
        np.testing.assert_allclose(n, t, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(n[0], hand, rtol=1e-5, atol=1e-4)


def test_backbone_aams_and_region_maps_follow_eq3_and_section_3_4(model):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        o = model.forward_backbone(x)
        conv5, probs, aams, rmaps = model.backbone(x)
        h = torch.relu(model.conv6(o["conv5"]))
        conv7 = torch.relu(model.conv7(h)).numpy()
    s = model.schema
    W = model.classifier.weight.detach().numpy()
    offs = model.offsets
    assert conv5.shape == (2, 16, 7, 7) and probs.shape == (2, sum(s.num_classes))
    attr_maps = []
    for a in range(len(s.attributes)):
        p = probs[:, offs[a]:offs[a + 1]].numpy()
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
        cams = np.einsum("bkhw,ck->bchw", conv7, W[offs[a]:offs[a + 1]])
        top = p.argmax(1)
        np.testing.assert_allclose(aams[:, a].numpy(), cams[np.arange(2), top], rtol=1e-4, atol=1e-5)
        w = np.where(p > REGION_CONFIDENCE, p, 0.0)
        attr_maps.append((cams * w[:, :, None, None]).sum(1))
    for r, reg in enumerate(s.regions):
        hand = sum(attr_maps[s.attr_index(src)] for src in reg.sources)
        np.testing.assert_allclose(rmaps[:, r].numpy(), hand, rtol=1e-4, atol=1e-5)


def test_region_rep_is_the_attributes_own_head_on_the_region_box(model):
    s = model.schema
    torch.manual_seed(2)
    conv5 = torch.relu(torch.randn(2, 16, 7, 7))
    A, R = len(s.attributes), len(s.regions)
    boxes = torch.from_numpy(roi.full_boxes(2, A + R, 7, 7))
    boxes[:, s.attr_index("color")] = torch.tensor([1.0, 2.0, 4.0, 6.0])
    boxes[:, A + 1] = torch.tensor([1.0, 2.0, 4.0, 6.0])  # the sleeve region gets the colour box
    with torch.no_grad():
        attr_reps, region_reps = model.heads(conv5, boxes)
    assert attr_reps.shape == (2, A, 16) and region_reps.shape == (2, len(s.region_pairs), 16)
    p = s.region_pair_index("sleeve", "color")
    torch.testing.assert_close(region_reps[:, p], attr_reps[:, s.attr_index("color")])
    q = s.region_pair_index("sleeve", "pattern")  # same box, pattern head: a different representation
    assert not torch.allclose(region_reps[:, q], attr_reps[:, s.attr_index("color")])


def test_alexnet_weights_load_into_conv1_to_conv4(tmp_path):
    s = synthetic_schema()
    paper = FashionSearchNet(s, PRESETS["paper"], "fsn")
    sd = {"features.0.weight": torch.randn(64, 3, 11, 11), "features.0.bias": torch.randn(64),
          "features.3.weight": torch.randn(192, 64, 5, 5), "features.3.bias": torch.randn(192),
          "features.6.weight": torch.randn(384, 192, 3, 3), "features.6.bias": torch.randn(384),
          "features.8.weight": torch.randn(256, 384, 3, 3), "features.8.bias": torch.randn(256)}
    torch.save(sd, tmp_path / "alexnet.pth")
    paper.load_backbone_weights(tmp_path / "alexnet.pth")
    assert torch.equal(paper.conv3.weight, sd["features.6.weight"]) and torch.equal(paper.conv4.bias, sd["features.8.bias"])
    tiny = FashionSearchNet(s, PRESETS["tiny"], "fsn")
    with pytest.raises(CheckpointError, match="use --preset paper"):
        tiny.load_backbone_weights(tmp_path / "alexnet.pth")
    del sd["features.8.bias"]
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="features.8.bias"):
        paper.load_backbone_weights(tmp_path / "partial.pth")


def test_presets_meet_their_size_budgets():
    s = synthetic_schema()
    A = len(s.attributes)
    paper = FashionSearchNet(s, PRESETS["paper"], "fsn")
    heads = sum(p.numel() for n, p in paper.named_parameters() if n.startswith(("reduce", "fc9", "fc10")))
    assert heads * 4 < 100e6  # exported heads under ~100 MB
    assert PRESETS["paper"].conv5 == 384 and PRESETS["paper"].conv6 == PRESETS["paper"].conv7 == 512
    assert (A + 1) * PRESETS["edge"].global_dim * 4 <= 8192
    assert PRESETS["edge"].conv5_size() == 15 and PRESETS["paper"].conv5_size() == 13


def test_area_pool_is_adaptive_average_pooling_of_the_whole_map():
    """no_aam's fair pooling (issue 17): every cell of the map counts; hand-checked bins on a 15-cell map."""
    from fashionsearchnet.training.model import area_pool
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 3, 16, 16, generator=g)
    whole = torch.tensor([0.0, 0.0, 15.0, 15.0]).expand(2, 1, 4)
    got = area_pool(feat, whole, 4)[:, 0]
    assert torch.allclose(got, F.adaptive_avg_pool2d(feat, 4), atol=1e-6)  # divisible: plain 4x4 blocks
    feat15 = torch.rand(1, 1, 15, 15, generator=g)
    got15 = area_pool(feat15, torch.tensor([[[0.0, 0.0, 14.0, 14.0]]]), 4)[0, 0, 0]
    # bin 0 covers cells 0, 1, 2 fully and 0.75 of cell 3 (15/4 = 3.75 cells per bin)
    wts = torch.tensor([1, 1, 1, 0.75] + [0] * 11) / 3.75
    want = wts @ feat15[0, 0] @ wts
    assert torch.allclose(got15[0, 0], want, atol=1e-6)
    assert torch.allclose(got15.sum() / 16, feat15.mean(), atol=1e-6)  # equal bins: the mean of means is the mean


def test_no_aam_reads_every_cell_and_old_checkpoints_keep_sampling():
    s = synthetic_schema()
    fair = FashionSearchNet(s, PRESETS["tiny"], "no_aam").eval()
    legacy = FashionSearchNet(s, PRESETS["tiny"], "no_aam", whole_map_pool="sample").eval()
    legacy.load_state_dict(fair.state_dict())
    conv5 = torch.rand(1, PRESETS["tiny"].conv5, 7, 7)
    n = len(s.attributes) + len(s.regions)
    boxes = torch.tensor([0.0, 0.0, 6.0, 6.0]).expand(1, n, 4).contiguous()
    base = fair.heads(conv5, boxes)[0]
    bumped = conv5.clone()
    bumped[:, :, 3, 1] += 5.0  # a cell the 4-point bilinear crop of a 7x7 map never reads (x = 1 lies on no sample)
    assert not torch.allclose(fair.heads(bumped, boxes)[0], base)
    assert torch.allclose(legacy.heads(bumped, boxes)[0], legacy.heads(conv5, boxes)[0])
    with pytest.raises(UsageError):
        FashionSearchNet(s, PRESETS["tiny"], "no_aam", whole_map_pool="max")
