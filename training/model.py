"""FashionSearchNet (section 3) in PyTorch, split into the two graphs the runtime executes.

``backbone(images) -> (conv5, probs, aams, region_maps)`` and ``heads(conv5, boxes) -> (attr_reps, region_reps)``
as docs/design.md fixes them; the ROI step between them is ``runtime/roi.py`` (numpy), used by training too.
Both methods are traceable for ONNX export: no data-dependent Python control flow, ROI pooling is a hand-built
sampling grid + ``F.grid_sample(align_corners=True)`` (ONNX GridSample), each attribute head runs once on
all boxes that use it (its own box and its region pairs), selected by constant indices.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashionsearchnet.data.schema import Schema, class_offsets
from fashionsearchnet.errors import CheckpointError, UsageError
from fashionsearchnet.training.presets import Preset
from fashionsearchnet.training.region_attention import AttentionRegionHeads, pack_early
from fashionsearchnet.training.region_head import RegionHeads, RegionHeadSpec, layer_channels

log = logging.getLogger(__name__)

METHODS = ("attribute", "no_aam", "fsn")
METHOD_ALIASES = {"fsn_region": "fsn"}
# How no_aam's heads read the whole map. "area" (default since issue 17): each of the pool x pool bins is the mean of
# the cells it covers, so every cell counts evenly. "sample": the legacy 4x4 bilinear crop, which reads 36 of 225
# cells of the edge preset's 15x15 map (20 on the border); checkpoints written before the field exist read as it.
WHOLE_MAP_POOLS = ("area", "sample")
REGION_CONFIDENCE = 0.1  # section 3.4: classes with confidence > 0.1 are relevant
TORCHVISION_ALEXNET = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8"}


def canonical_method(name: str) -> str:
    """``fsn_region`` -> ``fsn`` (the same model searched with region awareness); UsageError if unknown."""
    m = METHOD_ALIASES.get(name, name)
    if m not in METHODS:
        raise UsageError(f"unknown method {name!r}; valid methods: {', '.join(METHODS + tuple(METHOD_ALIASES))}")
    return m


def roi_pool(feat: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """crop_and_resize: (B,C,h,w) x (B,K,4) inclusive cell boxes -> (B,K,C,size,size) bilinear samples.

    Sample ``i`` along x is ``x0 + (x1 - x0) * i / (size - 1)`` in cell coordinates (align_corners=True).
    """
    b, c, h, w = feat.shape
    k = boxes.shape[1]
    t = torch.arange(size, dtype=feat.dtype, device=feat.device) / float(max(size - 1, 1))
    x0, y0, x1, y1 = boxes[..., 0:1], boxes[..., 1:2], boxes[..., 2:3], boxes[..., 3:4]
    xs = x0 + (x1 - x0) * t  # (B,K,size)
    ys = y0 + (y1 - y0) * t
    gx = xs * (2.0 / max(w - 1, 1)) - 1.0
    gy = ys * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack(
        [gx[:, :, None, :].expand(b, k, size, size), gy[:, :, :, None].expand(b, k, size, size)], dim=-1
    )  # (B,K,y,x,2)
    out = F.grid_sample(feat, grid.reshape(b, k * size, size, 2), mode="bilinear", padding_mode="border",
                        align_corners=True)  # (B,C,K*size,size)
    return out.reshape(b, c, k, size, size).permute(0, 2, 1, 3, 4)


def _bin_weights(lo: torch.Tensor, hi: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """(B,K,1) inclusive cell range -> (B,K,size,n): cell j's share of each of ``size`` equal bins over the range's
    continuous extent [lo - 0.5, hi + 0.5] (rows sum to 1)."""
    t = torch.arange(size + 1, dtype=lo.dtype, device=lo.device) / float(size)
    edges = (lo - 0.5) + (hi - lo + 1.0) * t  # (B,K,size+1)
    start, end = edges[..., :-1, None], edges[..., 1:, None]
    cells = torch.arange(n, dtype=lo.dtype, device=lo.device)
    overlap = (torch.minimum(end, cells + 0.5) - torch.maximum(start, cells - 0.5)).clamp(min=0.0)
    return overlap / (end - start).clamp(min=1e-6)


def area_pool(feat: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Average pooling of each box to ``size`` x ``size`` bins: (B,C,h,w) x (B,K,4) -> (B,K,C,size,size).

    Bin (i, j) is the mean of the cells it covers, weighted by the covered fraction (for the whole map this is
    adaptive average pooling with fractional bin edges). Two matrix products, so it exports to any ONNX runtime.
    """
    b, c, h, w = feat.shape
    wy = _bin_weights(boxes[..., 1:2], boxes[..., 3:4], size, h)  # (B,K,size,h)
    wx = _bin_weights(boxes[..., 0:1], boxes[..., 2:3], size, w)  # (B,K,size,w)
    rows = wy[:, :, None] @ feat[:, None]  # (B,K,C,size,w)
    return rows @ wx[:, :, None].transpose(-1, -2)  # (B,K,C,size,size)


def make_region_heads(spec: RegionHeadSpec, schema: Schema, preset: Preset) -> nn.Module:
    """The region heads of ``spec`` for every region pair of ``schema`` (untrained)."""
    pairs = schema.region_pairs
    context = layer_channels(preset, spec.layer)
    if spec.kind == "attention":
        names = [r.name for r in schema.regions]
        return AttentionRegionHeads([names.index(r) for r, _ in pairs], context, preset.conv1, spec.pool,
                                    spec.hidden, preset.rep_dim)
    return RegionHeads(len(pairs), context * spec.pool ** 2, spec.hidden, preset.rep_dim)


def early_map(spec: RegionHeadSpec, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the region heads of ``spec`` read, on conv5's grid, from :meth:`FashionSearchNet.forward_backbone`'s
    outputs: the early layer's map (crop heads) or the packed fine maps (attention heads)."""
    if spec.kind == "attention":
        return pack_early(outputs[spec.layer], outputs["image"], outputs["conv1"], outputs["region_maps"], spec.pool)
    return outputs[spec.layer]


def region_inputs(spec: RegionHeadSpec, early: torch.Tensor, pair_boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The region heads' arguments from :func:`early_map` and the pairs' region boxes (B,P,4): each pair's crop
    (B,P,C*pool*pool) for crop heads; the packed map and the boxes for attention heads."""
    if spec.kind == "attention":
        return early, pair_boxes
    return (roi_pool(early, pair_boxes, spec.pool).flatten(2),)


def global_representation(attr_reps: torch.Tensor, lam: torch.Tensor, W: torch.Tensor, astar: int) -> torch.Tensor:
    """Eq. 7: (N,A,D) -> (N,G) for set ``astar`` (0 = no manipulation, 1+a = attribute a manipulated)."""
    n, a, d = attr_reps.shape
    return (attr_reps * lam[astar][None, :, None]).reshape(n, a * d) @ W[astar]


class FashionSearchNet(nn.Module):
    """AlexNet-style conv1-conv7 + GAP classifiers (AAMs) + ROI-pooled per-attribute heads + global params."""

    def __init__(self, schema: Schema, preset: Preset, method: str = "fsn", whole_map_pool: str = "area",
                 region_head: RegionHeadSpec | None = None):
        super().__init__()
        if whole_map_pool not in WHOLE_MAP_POOLS:
            raise UsageError(f"whole_map_pool must be one of {', '.join(WHOLE_MAP_POOLS)}, got {whole_map_pool!r}")
        self.schema = schema
        self.preset = preset
        self.method = canonical_method(method)
        self.whole_map_pool = whole_map_pool
        # no_aam with "area" pooling averages its (whole-map) boxes; everything else samples a bilinear crop
        self._pool = area_pool if self.method == "no_aam" and whole_map_pool == "area" else roi_pool
        p = preset
        ch = (3,) + p.channels
        self.conv1 = nn.Conv2d(3, p.conv1, p.conv1_kernel, stride=p.conv1_stride, padding=p.conv1_pad)
        self.conv2 = nn.Conv2d(ch[1], p.conv2, 5, padding=2)
        self.conv3 = nn.Conv2d(ch[2], p.conv3, 3, padding=1)
        self.conv4 = nn.Conv2d(ch[3], p.conv4, 3, padding=1)
        self.conv5 = nn.Conv2d(ch[4], p.conv5, 3, padding=1)
        self.conv6 = nn.Conv2d(ch[5], p.conv6, 3, padding=1)
        self.conv7 = nn.Conv2d(ch[6], p.conv7, 3, padding=1)
        self.norms = nn.ModuleList([nn.BatchNorm2d(c) if p.batch_norm else nn.Identity() for c in p.channels])
        self.num_classes = schema.num_classes
        self.offsets = class_offsets(self.num_classes)
        self.classifier = nn.Linear(p.conv7, sum(self.num_classes))  # w_a of eq. 2/3, all attributes stacked
        A = len(schema.attributes)
        pairs = schema.region_pairs
        region_names = [r.name for r in schema.regions]
        self.num_attributes = A
        self.num_pairs = len(pairs)
        self.reduce = nn.Conv2d(p.conv5, p.reduce, 1)
        in_f = p.reduce * p.pool * p.pool
        self.fc9_w = nn.Parameter(torch.empty(A, in_f, p.fc))
        self.fc9_b = nn.Parameter(torch.zeros(A, p.fc))
        self.fc10_w = nn.Parameter(torch.empty(A, p.fc, p.rep_dim))
        self.fc10_b = nn.Parameter(torch.zeros(A, p.rep_dim))
        self.rep_classifiers = nn.ModuleList([nn.Linear(p.rep_dim, c) for c in self.num_classes])  # L_TC
        self.lam = nn.Parameter(torch.ones(A + 1, A))
        self.W = nn.Parameter(torch.randn(A + 1, A * p.rep_dim, p.global_dim) / math.sqrt(A * p.rep_dim))
        # head k of the batched heads: attribute k (k < A), else region pair k-A (its attribute's own head); with
        # region heads (training/region_head.py) the pairs are theirs and the attribute heads pool attributes only
        self.region_spec = region_head
        head_pairs = [] if region_head is not None else pairs
        head_index = list(range(A)) + [schema.attr_index(a) for _, a in head_pairs]
        box_index = list(range(A)) + [A + region_names.index(r) for r, _ in head_pairs]
        self.region_heads = None if region_head is None else make_region_heads(region_head, schema, p)
        self.register_buffer("pair_box_index", torch.tensor([A + region_names.index(r) for r, _ in pairs],
                                                            dtype=torch.long), persistent=False)
        self._head_positions = [[k for k, h in enumerate(head_index) if h == a] for a in range(A)]
        order = [k for pos in self._head_positions for k in pos]
        self._head_inverse = [order.index(k) for k in range(len(order))]
        self.register_buffer("box_index", torch.tensor(box_index, dtype=torch.long), persistent=False)
        self.dropout = nn.Dropout(0.5)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for w in (self.fc9_w, self.fc10_w):  # nn.Linear's default bound 1/sqrt(fan_in), per head
            nn.init.uniform_(w, -1.0 / math.sqrt(w.shape[1]), 1.0 / math.sqrt(w.shape[1]))

    # ---- graph 1 ---------------------------------------------------------------------------------
    def forward_backbone(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything the backbone computes, with the classifier logits (training needs them)."""
        n = self.norms
        conv1 = F.relu(n[0](self.conv1(images)))
        x = F.max_pool2d(conv1, 3, 2)
        x = F.relu(n[1](self.conv2(x)))
        pool2 = F.max_pool2d(x, 3, 2)
        conv3 = F.relu(n[2](self.conv3(pool2)))
        x = F.relu(n[3](self.conv4(conv3)))
        conv5 = F.relu(n[4](self.conv5(x)))
        x = F.relu(n[5](self.conv6(conv5)))
        conv7 = F.relu(n[6](self.conv7(x)))
        logits = self.classifier(conv7.mean(dim=(2, 3)))  # GAP (eq. 1, mean instead of sum: a scale)
        cams = torch.einsum("bkhw,ck->bchw", conv7, self.classifier.weight)  # eq. 3 for every class
        probs, aams, attr_maps = [], [], []
        for a in range(self.num_attributes):
            s, e = self.offsets[a], self.offsets[a + 1]
            pa = torch.softmax(logits[:, s:e], dim=1)
            block = cams[:, s:e]
            top = torch.argmax(pa, dim=1)  # the class that maximises the confidence
            idx = top[:, None, None, None].expand(-1, 1, block.shape[2], block.shape[3])
            aams.append(torch.gather(block, 1, idx)[:, 0])
            wgt = pa * (pa > REGION_CONFIDENCE).to(pa.dtype)  # section 3.4: relevant classes, weighted
            attr_maps.append((block * wgt[:, :, None, None]).sum(dim=1))
            probs.append(pa)
        regions = []
        for r in self.schema.regions:
            acc = attr_maps[self.schema.attr_index(r.sources[0])]
            for src in r.sources[1:]:
                acc = acc + attr_maps[self.schema.attr_index(src)]
            regions.append(acc)
        b, _, h, w = conv7.shape
        region_maps = torch.stack(regions, dim=1) if regions else conv7.new_zeros((b, 0, h, w))
        return {"conv5": conv5, "logits": logits, "probs": torch.cat(probs, dim=1),
                "aams": torch.stack(aams, dim=1), "region_maps": region_maps, "pool2": pool2, "conv3": conv3,
                "conv1": conv1, "image": images}

    def backbone(self, images: torch.Tensor):
        """(B,3,S,S) -> conv5 (B,C5,h,w), probs (B,sumC), aams (B,A,h,w), region_maps (B,R,h,w). With region heads
        the first output is conv5 with the region heads' early map appended along the channels (the heads' input)."""
        o = self.forward_backbone(images)
        return self.backbone_features(o), o["probs"], o["aams"], o["region_maps"]

    def backbone_features(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The heads' input from :meth:`forward_backbone`'s outputs: conv5, with the region heads' map appended."""
        if self.region_spec is None:
            return outputs["conv5"]
        return torch.cat([outputs["conv5"], early_map(self.region_spec, outputs)], dim=1)

    # ---- graph 2 ---------------------------------------------------------------------------------
    def heads(self, conv5: torch.Tensor, boxes: torch.Tensor):
        """conv5 (B,C5,h,w) + boxes (B,A+R,4) -> attr_reps (B,A,D), region_reps (B,P,D) (fc10 outputs; with region
        heads ``conv5`` carries their early map after its own C5 channels and they give ``region_reps``)."""
        early = None
        if self.region_heads is not None:
            c5 = self.conv5.out_channels
            conv5, early = conv5[:, :c5], conv5[:, c5:]
        r = F.relu(self.reduce(conv5))
        crops = self._pool(r, boxes[:, self.box_index], self.preset.pool)  # (B,K,C,P,P)
        x = crops.flatten(2)  # (B,K,in)
        outs = []
        for a, pos in enumerate(self._head_positions):  # each head's weights used once (no copies in ONNX)
            xa = x[:, pos] if len(pos) > 1 else x[:, pos[0]:pos[0] + 1]
            ha = self.dropout(F.relu(xa @ self.fc9_w[a] + self.fc9_b[a]))
            outs.append(ha @ self.fc10_w[a] + self.fc10_b[a])
        y = torch.cat(outs, dim=1)[:, self._head_inverse]  # back to box order: attributes, then region pairs
        a = self.num_attributes
        if early is None:
            return y[:, :a], y[:, a:]
        assert self.region_spec is not None
        return y, self.region_heads(*region_inputs(self.region_spec, early, boxes[:, self.pair_box_index]))

    def rep_logits(self, attr_reps: torch.Tensor) -> list[torch.Tensor]:
        """L_TC: the per-attribute classifier on fc10_a (dropout on the fc10 output while training)."""
        x = self.dropout(attr_reps)
        return [cls(x[:, a]) for a, cls in enumerate(self.rep_classifiers)]

    def global_rep(self, attr_reps: torch.Tensor, astar: int) -> torch.Tensor:
        """Eq. 7 with this model's lam and W."""
        return global_representation(attr_reps, self.lam, self.W, astar)

    # ---- weights ---------------------------------------------------------------------------------
    def load_backbone_weights(self, path: str | Path) -> None:
        """Load torchvision AlexNet ``features.*`` conv1-conv4 weights from a local file (never downloads)."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"--backbone-weights {path}: file not found; give a local torchvision AlexNet state dict")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
            raise CheckpointError(f"{path}: cannot be read as a torch state dict ({type(e).__name__}: {e})") from None
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        for mine, theirs in TORCHVISION_ALEXNET.items():
            layer = getattr(self, mine)
            for part in ("weight", "bias"):
                key = f"{theirs}.{part}"
                if key not in sd:
                    raise CheckpointError(f"{path}: key {key!r} missing; expected torchvision AlexNet 'features.*' keys")
                t = sd[key]
                target = getattr(layer, part)
                if tuple(t.shape) != tuple(target.shape):
                    raise CheckpointError(
                        f"{path}: {key} has shape {tuple(t.shape)} but {mine}.{part} of preset "
                        f"{self.preset.name!r} needs {tuple(target.shape)}; use --preset paper for AlexNet weights"
                    )
                with torch.no_grad():
                    target.copy_(t)
        log.info("loaded AlexNet conv1-conv4 from %s", path)
