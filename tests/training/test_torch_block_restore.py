"""tests/support/torch_block.py puts torch back as it was: the same modules and the same package attributes
(torch.multiprocessing.spawn is a function shadowing the submodule of that name; restoring the submodule there
broke mp.spawn for every later test in the session)."""
from __future__ import annotations

import importlib

import pytest

torch = pytest.importorskip("torch")


def test_blocking_and_restoring_keeps_package_attributes():
    import torch.multiprocessing as mp
    from tests.support.torch_block import torch_blocked

    before = mp.spawn
    assert callable(before)
    with torch_blocked():
        with pytest.raises(ImportError):
            importlib.import_module("torch")
    import torch.multiprocessing as mp_after

    assert mp_after is mp and mp_after.spawn is before and callable(mp_after.spawn)
