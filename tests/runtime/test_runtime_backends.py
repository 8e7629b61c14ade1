"""ONNX Runtime backend: IO-bound backbone/heads (conv5 kept as an OrtValue) equal the plain named-numpy
calls; select_backend picks and names what runs; misuse is a clear error."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from fashionsearchnet.errors import UsageError
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.backends import select_backend
from fashionsearchnet.runtime.backends.ort import OrtBackend, session_options
from fashionsearchnet.runtime.bundle import Bundle


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return Bundle.open(tiny_bundle)


def test_io_binding_path_equals_plain_run(bundle):
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    with select_backend("ort-cpu", bundle) as be:
        assert be.name == "ort-cpu"
        plain = be.run("backbone", {"images": x})
        bound = be.backbone(x)
        assert set(bound) == {"probs", "aams", "region_maps"}  # conv5 stays inside the backend
        for k in bound:
            np.testing.assert_array_equal(bound[k], plain[k])
        boxes = roi.all_boxes(plain["aams"], plain["region_maps"], bundle.schema)
        heads_plain = be.run("heads", {"conv5": plain["conv5"], "boxes": boxes})
        heads_bound = be.heads(boxes)
        for k in heads_bound:
            np.testing.assert_array_equal(heads_bound[k], heads_plain[k])


def test_heads_before_backbone_or_wrong_batch_is_an_error(bundle):
    with OrtBackend(bundle.graph_path("backbone"), bundle.graph_path("heads")) as be:
        with pytest.raises(UsageError, match="before backbone"):
            be.heads(np.zeros((1, 8, 4), np.float32))
        be.backbone(np.zeros((2, 3, 64, 64), np.float32))
        with pytest.raises(UsageError, match="batch 1 but the last backbone\\(\\) batch was 2"):
            be.heads(np.zeros((1, 8, 4), np.float32))


def test_auto_says_which_backend_it_took(bundle, caplog):
    with caplog.at_level(logging.INFO, logger="fashionsearchnet.runtime.backends"):
        be = select_backend("auto", bundle)
    be.close()
    assert any(f"backend auto -> {be.name}" in r.getMessage() for r in caplog.records)


def test_session_options_threads_and_fp16_level():
    import onnxruntime as ort

    so = session_options("fp32", threads=2)
    assert session_options().intra_op_num_threads == 1
    assert so.intra_op_num_threads == 2 and so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options("fp16").graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
