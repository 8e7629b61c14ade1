"""The kiosk-side test folders (tests/data, search, runtime, gallery) run with torch blocked
(tests/conftest.py + tests/support/torch_block.py): this proves it for tests/runtime; the tiny bundle they use
is the checked-in asset, not an export made with torch."""
from __future__ import annotations

import sys

from tests.support.torch_block import assert_torch_blocked


def test_torch_and_the_torch_side_packages_cannot_be_imported_here():
    assert_torch_blocked()


def test_the_runtime_runs_the_asset_without_torch(tiny_bundle):
    import numpy as np

    from fashionsearchnet.runtime.extractor import FeatureExtractor

    with FeatureExtractor(tiny_bundle, backend="ort-cpu") as fx:
        f = fx.extract([np.zeros((64, 64, 3), np.uint8)])
    assert f.attr_reps.shape[0] == 1 and "torch" not in sys.modules
