"""What every backend's entry of ``fsn bench --json`` must hold (tests/runtime and the torch-eager test)."""
from __future__ import annotations

KEYS = {"batch1_total_ms_p50", "batch1_total_ms_p99", "stages_ms_p50", "preprocess_ms_p50", "backbone_ms_p50",
        "roi_ms_p50", "heads_ms_p50", "global_ms_p50", "throughput_ips", "peak_rss_mb"}


def check_bench_result(res: dict) -> None:
    """The keys and the internal consistency of each backend's figures (also used by the torch-eager test)."""
    for r in res.values():
        assert KEYS <= set(r)
        assert set(r["stages_ms_p50"]) == {"preprocess", "backbone", "roi", "heads", "global"}
        assert 0 < r["batch1_total_ms_p50"] <= r["batch1_total_ms_p99"]
        assert sum(r["stages_ms_p50"].values()) <= r["batch1_total_ms_p99"]
        assert r["throughput_ips"] == max(r["throughput_ips_by_batch"].values()) and r["runs"] == 8
