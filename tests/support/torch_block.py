"""Run a block of test code as a kiosk would: ``torch`` (and onnx, which only export needs) cannot be imported.

A meta-path finder refuses the blocked top-level names, and the modules already imported by earlier tests in the
same process (torch itself, and fashionsearchnet.training / fashionsearchnet.export, which need it) are taken out
of ``sys.modules`` for the duration, so that importing any of them fails instead of reusing the loaded copy.
Everything is put back afterwards (the same module objects), so torch-side tests later in the session are
unaffected. tests/conftest.py applies this to every test in the kiosk-side folders (``TORCH_FREE_FOLDERS``).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import sys
from typing import Iterator

BLOCKED = ("torch", "torchvision", "onnx", "onnxscript")  # as tests/test_no_torch.py blocks them
TORCH_SIDE = ("fashionsearchnet.training", "fashionsearchnet.export")


def _hidden(name: str) -> bool:
    return name.split(".")[0] in BLOCKED or any(name == p or name.startswith(p + ".") for p in TORCH_SIDE)


class RefuseTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked here: kiosk-side tests run without torch "
                                      f"(tests/support/torch_block.py)", name=name)
        return None


@contextlib.contextmanager
def torch_blocked() -> Iterator[None]:
    """Within the block ``import torch`` (or onnx, or fashionsearchnet.training/export) raises ImportError."""
    saved = {n: m for n, m in sys.modules.items() if _hidden(n)}
    # the parents' attributes as they are now: a package may bind a name to something other than its submodule
    # (torch.multiprocessing.spawn is a function shadowing the submodule of the same name)
    missing = object()
    attrs = {n: getattr(sys.modules[n.rpartition(".")[0]], n.rpartition(".")[2], missing)
             for n in saved if n.rpartition(".")[0] in sys.modules}
    for n in saved:
        del sys.modules[n]
    finder = RefuseTorch()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for n in [n for n in sys.modules if _hidden(n)]:  # torch-free parts imported anew while blocked
            del sys.modules[n]
        sys.modules.update(saved)
        for n, value in attrs.items():  # and the packages' attributes are what they were
            parent, _, child = n.rpartition(".")
            if value is missing:
                if hasattr(sys.modules[parent], child):
                    delattr(sys.modules[parent], child)
            else:
                setattr(sys.modules[parent], child, value)


def assert_torch_blocked() -> None:
    """Fail unless torch, onnx and the torch-side packages cannot be imported here (a folder's proof that the
    conftest blocks them)."""
    import importlib

    assert "torch" not in sys.modules, "torch is loaded in a kiosk-side test"
    for name in ("torch", "torch.nn", "onnx", "fashionsearchnet.training.model", "fashionsearchnet.export.graphs"):
        try:
            importlib.import_module(name)
        except ImportError as e:
            assert "blocked" in str(e), f"{name}: {e}"
        else:
            raise AssertionError(f"{name} could be imported in a kiosk-side test")
