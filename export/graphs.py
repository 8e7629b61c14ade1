"""Export a model's two graphs to ONNX: ``backbone`` (images -> conv5, probs, aams, region_maps) and
``heads`` (conv5, boxes -> attr_reps, region_reps), dynamic batch axis, fp32 or fp16 baked in (inputs and
outputs stay float32; the graph casts at its edges, as TensorRT 11's strongly typed networks need)."""
from __future__ import annotations

import copy
import io
import logging
from contextlib import redirect_stdout
from pathlib import Path

import torch
import torch.nn as nn

log = logging.getLogger(__name__)

BACKBONE_IN = ("images",)
BACKBONE_OUT = ("conv5", "probs", "aams", "region_maps")
HEADS_IN = ("conv5", "boxes")
HEADS_OUT = ("attr_reps", "region_reps")
EXPORT_BATCH = 2  # the example batch; parity is checked at other batch sizes
OPSET = 20  # torch 2.13's dynamo exporter; TensorRT 10 parses opset 9..20


class _Backbone(nn.Module):
    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, images: torch.Tensor):
        outs = self.model.backbone(images.to(self.dtype))
        return tuple(o.float() for o in outs)


class _Heads(nn.Module):
    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, conv5: torch.Tensor, boxes: torch.Tensor):
        outs = self.model.heads(conv5.to(self.dtype), boxes.to(self.dtype))
        return tuple(o.float() for o in outs)


def _export(module: nn.Module, args: tuple, names_in: tuple, names_out: tuple, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    dyn = {n: {0: batch} for n in names_in}
    with redirect_stdout(io.StringIO()):  # the exporter prints progress lines; keep library output on logging
        torch.onnx.export(module, args, str(path), input_names=list(names_in), output_names=list(names_out),
                          dynamo=True, dynamic_shapes=dyn, external_data=False, opset_version=OPSET)


def export_graphs(model: nn.Module, size: int, out_dir: str | Path, precision: str = "fp32",
                  num_boxes: int | None = None) -> dict[str, Path]:
    """Write ``backbone.onnx`` and ``heads.onnx`` for ``model`` (eval mode) into ``out_dir``.

    ``num_boxes`` = A + R (attribute boxes then region boxes); taken from the example backbone output if None.
    """
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision {precision!r}: use fp32 or fp16")
    out_dir = Path(out_dir)
    m = copy.deepcopy(model).eval()
    dtype = torch.float32
    if precision == "fp16":
        m = m.half()
        dtype = torch.float16
    example = torch.randn(EXPORT_BATCH, 3, size, size)
    with torch.no_grad():
        conv5, _probs, aams, regions = model.eval().backbone(example)
    h, w = conv5.shape[-2:]
    K = num_boxes if num_boxes is not None else aams.shape[1] + regions.shape[1]
    boxes = torch.zeros(EXPORT_BATCH, K, 4)
    boxes[..., 2], boxes[..., 3] = w - 1, h - 1
    paths = {"backbone": out_dir / "backbone.onnx", "heads": out_dir / "heads.onnx"}
    _export(_Backbone(m, dtype).eval(), (example,), BACKBONE_IN, BACKBONE_OUT, paths["backbone"])
    _export(_Heads(m, dtype).eval(), (conv5, boxes), HEADS_IN, HEADS_OUT, paths["heads"])
    log.info("exported %s graphs (%s) to %s", ", ".join(paths), precision, out_dir)
    return paths


def set_metadata(path: str | Path, props: dict[str, str]) -> None:
    """Replace the ONNX file's metadata_props with ``props`` (strings), in place."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in props.items():
        e = model.metadata_props.add()
        e.key, e.value = str(k), str(v)
    onnx.save(model, str(path))
