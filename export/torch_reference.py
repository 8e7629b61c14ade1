"""The PyTorch eager reference with the extractor's interface and stage timings (for ``fsn bench``'s
``torch-eager`` row): same preprocessing and ROI step (numpy), backbone/heads/global in torch."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.extractor import STAGES
from fashionsearchnet.runtime.images import load_rgb


class TorchExtractor:
    """``extract(images, batch_size)`` through the PyTorch model of a checkpoint (eval, no_grad)."""

    backend_name = "torch-eager"

    def __init__(self, checkpoint: str | Path, device: str = "cpu", threads: int | None = None):
        from fashionsearchnet.training.checkpoint import load_run

        if threads:
            torch.set_num_threads(int(threads))
        self.model, self.meta = load_run(checkpoint, device)
        self.device = device
        self.pre = self.meta["preprocessing"]
        self.roi = self.meta["roi"]  # the checkpoint's heads / display boxes, as the runtime's bundle
        self.last_timings: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    @torch.no_grad()
    def extract(self, images: Sequence, batch_size: int = 32) -> dict[str, np.ndarray]:
        t = {k: 0.0 for k in STAGES}
        out = []
        for s in range(0, len(images), batch_size):
            chunk = images[s:s + batch_size]
            t0 = time.perf_counter()
            x = np.stack([self.pre(load_rgb(im, s + i)) for i, im in enumerate(chunk)])
            xt = torch.from_numpy(x).to(self.device)
            t1 = time.perf_counter()
            conv5, probs, aams, regions = self.model.backbone(xt)
            a_np, r_np = aams.cpu().numpy(), regions.cpu().numpy()
            t2 = time.perf_counter()
            b, a, h, w = a_np.shape
            boxes = (roi.full_boxes(b, a + r_np.shape[1], h, w) if self.model.method == "no_aam"
                     else roi.choice_boxes(a_np, r_np, self.model.schema, self.roi)[0])
            t3 = time.perf_counter()
            attr, reg = self.model.heads(conv5, torch.from_numpy(boxes).to(self.device))
            self._sync()
            t4 = time.perf_counter()
            g = self.model.global_rep(attr, 0).cpu().numpy()
            t5 = time.perf_counter()
            for k, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                t[k] += dt * 1e3
            out.append(g)
        self.last_timings = t
        return {"global_reps": np.concatenate(out)}
