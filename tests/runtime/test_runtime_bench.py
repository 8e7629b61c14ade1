"""fsn bench writes the JSON shape the issue fixes and a markdown table with command and machine;
fsn engines without TensorRT is a clear error."""
from __future__ import annotations

import json

import numpy as np

from fashionsearchnet.app.cli import main
from fashionsearchnet.runtime.bench import bench_extractor, synthetic_images
from tests.support.bench_result import check_bench_result


def test_bench_json_and_markdown(tiny_bundle, tmp_path):
    out = tmp_path / "r.json"
    rc = main(["bench", str(tiny_bundle), "--json", str(out), "--runs", "8", "--warmup", "1", "--batches", "2,4",
               "--backends", "ort-cpu,trt"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res) == {"ort-cpu"}  # trt skipped (not installed), the JSON holds measured ones
    check_bench_result(res)
    md = (tmp_path / "r.md").read_text()
    assert "Command: `fsn bench" in md and "logical cores" in md and "| ort-cpu |" in md and "trt (" in md


class _Fake:
    """An extractor whose stage times are planted: the harness must report exactly them."""

    backend_name = "fake"

    def __init__(self):
        self.last_timings = {}
        self.calls = []

    def extract(self, images, batch_size=32):
        self.calls.append(len(images))
        self.last_timings = {"preprocess": 1.0, "backbone": 2.0, "roi": 0.05 * len(images), "heads": 3.0, "global": 0.5}


def test_harness_counts_runs_and_reports_planted_stage_times():
    fx = _Fake()
    r = bench_extractor(fx, synthetic_images(3, (8, 8)), runs=10, warmup=2, batches=(4,), throughput_repeats=2)
    assert fx.calls == [1] * 12 + [4] * 3  # warm-up + timed batch-1, then one warm + 2 timed batch-4
    assert r["stages_ms_p50"] == {"preprocess": 1.0, "backbone": 2.0, "roi": 0.05, "heads": 3.0, "global": 0.5}
    assert r["roi_ms_per_image_batched"] == np.float64(0.05)


def test_engines_without_tensorrt_is_a_clear_error(tiny_bundle, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        import pytest

        pytest.skip("TensorRT is installed here")
    assert main(["engines", str(tiny_bundle), "--fp16", "--max-batch", "8"]) == 2
    assert "'tensorrt' package is not installed" in capsys.readouterr().err
