"""The kiosk-side test folders (tests/data, search, runtime, gallery) run with torch blocked
(tests/conftest.py + tests/support/torch_block.py): this proves it for tests/gallery, whose indexing tests run
the checked-in tiny bundle, not an export made with torch."""
from __future__ import annotations

import importlib
import sys

import pytest


def test_torch_and_the_torch_side_packages_cannot_be_imported_here():
    assert "torch" not in sys.modules
    with pytest.raises(ImportError, match="blocked"):
        import torch  # noqa: F401
    for name in ("torch.nn", "onnx", "fashionsearchnet.training.model", "fashionsearchnet.export.graphs"):
        with pytest.raises(ImportError, match="blocked"):
            importlib.import_module(name)
