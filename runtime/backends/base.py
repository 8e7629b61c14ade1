"""The backend interface: two graphs (``backbone``, ``heads``) with named numpy inputs and outputs.

``backbone(images)`` returns the small host tensors the ROI step needs (``probs``, ``aams``, ``region_maps``)
and keeps ``conv5`` where it was computed (device memory on a GPU); ``heads(boxes)`` runs on that kept
``conv5``. ``run(graph, inputs)`` is the plain named-numpy call (everything on the host). ``name`` says what
actually runs: ``ort-cpu``, ``ort-cuda``, ``ort-trt`` or ``trt``. Use as a context manager.
"""
from __future__ import annotations

import abc

import numpy as np

from fashionsearchnet.errors import UsageError

BACKBONE_OUTPUTS = ("conv5", "probs", "aams", "region_maps")
HOST_OUTPUTS = ("probs", "aams", "region_maps")
HEADS_OUTPUTS = ("attr_reps", "region_reps")


class Backend(abc.ABC):
    """Runs a bundle's two graphs. Subclasses set ``name`` and implement the abstract methods."""

    name: str = "?"

    @abc.abstractmethod
    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run ``backbone`` or ``heads`` on host arrays; returns every output as a host array."""

    @abc.abstractmethod
    def backbone(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(B,3,S,S) float32 -> host ``probs``, ``aams``, ``region_maps``; ``conv5`` stays on the device."""

    @abc.abstractmethod
    def heads(self, boxes: np.ndarray) -> dict[str, np.ndarray]:
        """(B,A+R,4) float32 boxes on the ``conv5`` of the last :meth:`backbone` -> ``attr_reps``, ``region_reps``."""

    def close(self) -> None:
        """Release sessions, engines and device memory."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_images(images: np.ndarray, size: int) -> np.ndarray:
    """Validate a (B,3,S,S) float32 batch; returns it C-contiguous."""
    if images.ndim != 4 or images.shape[1:] != (3, size, size):
        raise UsageError(f"images: shape {images.shape}, expected (B, 3, {size}, {size}); preprocess with the bundle's size")
    return np.ascontiguousarray(images, dtype=np.float32)


def check_boxes(boxes: np.ndarray, last_batch: int | None) -> np.ndarray:
    """Validate a heads() call against the last backbone() batch (``None``: no backbone run yet); returns the
    boxes float32 and C-contiguous. One check for every backend that keeps conv5 between the two calls."""
    if last_batch is None:
        raise UsageError("heads() called before backbone(); run the backbone on the batch first")
    boxes = np.ascontiguousarray(boxes, dtype=np.float32)
    if boxes.shape[0] != last_batch:
        raise UsageError(f"boxes: batch {boxes.shape[0]} but the last backbone() batch was {last_batch}")
    return boxes
