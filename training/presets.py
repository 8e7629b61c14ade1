"""Network size presets: ``paper`` (section 4.5 sizes), ``edge`` (kiosk), ``tiny`` (tests).

Backbone: conv1 (k, stride, pad) -> ReLU -> maxpool 3/2 -> conv2 k5 -> ReLU -> maxpool 3/2 -> conv3..conv5 k3
-> conv6, conv7 k3 (added by the paper) -> GAP -> one linear classifier per attribute (AAMs, eq. 3).
Heads: 1x1 conv ``reduce`` on conv5 -> ROI pooling ``pool`` x ``pool`` -> per attribute fc9 (``fc``) -> fc10 (D).

* ``paper``: 224 input, AlexNet conv1-conv4 shapes (torchvision ``features.*`` load into them), conv5 384,
  conv6/conv7 512 as the paper; 1x1 conv 384->128 before a 6x6 ROI pool, fc9 768, D 256: 3.7 M parameters
  per attribute head, ~75 MB float32 for the 5 synthetic attributes (< ~100 MB). G 1024 (the paper's 4096
  would make W (A+1, A*D, G) 126 MB for 5 attributes).
* ``edge``: 128 input with a stride-2 conv1 so conv5 is 15x15 (a 7x7 map is too coarse to find a collar),
  narrow layers (~0.22 GMAC backbone vs ~0.7 for AlexNet at 224); D 64, G 128 so (A+1) indices of G float32
  are 3 KB per item for 5 attributes (4.6 KB for 8).
* ``edge`` and ``tiny`` add BatchNorm after every conv (choice: the paper starts from ImageNet AlexNet weights,
  which a kiosk project cannot download; from scratch, BN trains far faster: on a 3k-image synthetic catalogue
  after 2 stage-1 epochs the training loss is 5.38 with BN vs 6.78 without, colour accuracy 0.92 vs 0.70; benchmarks/experiments/stage1_batchnorm/stage1_batchnorm.py reruns it). ``paper`` keeps the
  paper's plain AlexNet convs so torchvision weights load as they are.
* ``tiny``: 64 input, 7x7 conv5, a few thousand parameters per layer; trains in seconds on a CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from fashionsearchnet.errors import CheckpointError, UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    input_size: int
    conv1: int
    conv2: int
    conv3: int
    conv4: int
    conv5: int
    conv6: int
    conv7: int
    conv1_kernel: int
    conv1_stride: int
    conv1_pad: int
    reduce: int  # 1x1 conv channels on conv5 before ROI pooling
    pool: int  # ROI pooling output size (pool x pool)
    fc: int  # fc9 width per attribute
    rep_dim: int  # D: fc10_a output (attribute representation)
    global_dim: int  # G: global representation
    batch_norm: bool = False  # BatchNorm after conv1-conv7 (folded into the convs by ONNX Runtime / TensorRT)

    @property
    def channels(self) -> tuple[int, ...]:
        return (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5, self.conv6, self.conv7)

    def conv5_size(self) -> int:
        """Side of the conv5 map for ``input_size`` (conv1, two 3/2 max-pools; later convs keep the size)."""
        s = (self.input_size + 2 * self.conv1_pad - self.conv1_kernel) // self.conv1_stride + 1
        for _ in range(2):
            s = (s - 3) // 2 + 1
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preset":
        names = {f.name for f in fields(cls)}
        missing = names - set(d) - {"batch_norm"}
        if missing:
            raise CheckpointError(f"preset in checkpoint lacks field(s) {', '.join(sorted(missing))}; retrain the run")
        return cls(**{k: d[k] for k in names if k in d})


PRESETS: dict[str, Preset] = {
    "paper": Preset("paper", 224, 64, 192, 384, 256, 384, 512, 512, 11, 4, 2, reduce=128, pool=6, fc=768,
                    rep_dim=256, global_dim=1024),
    "edge": Preset("edge", 128, 32, 64, 96, 128, 128, 160, 160, 5, 2, 2, reduce=64, pool=4, fc=256,
                   rep_dim=64, global_dim=128, batch_norm=True),
    "tiny": Preset("tiny", 64, 8, 12, 16, 16, 16, 24, 24, 5, 2, 2, reduce=8, pool=3, fc=32, rep_dim=16,
                   global_dim=32),
}


def get_preset(name: str) -> Preset:
    """Look a preset up by name (UsageError listing the valid names)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None
