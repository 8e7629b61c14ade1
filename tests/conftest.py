"""Shared session fixtures: a tiny synthetic catalogue made once per test session (seconds)."""
from __future__ import annotations

import pytest

from fashionsearchnet.data.synth import generate


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """240 synthetic 64 px images with splits, item ids, region truth and masks (seed 7)."""
    return generate(tmp_path_factory.mktemp("tiny_synth") / "data", 240, seed=7, size=64)
