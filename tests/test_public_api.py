"""The public API (``from fashionsearchnet import Bundle, FeatureExtractor, Gallery, ...``): every name in
``__all__`` resolves to the object its module defines, on a kiosk install (torch blocked), and ``import
fashionsearchnet`` alone imports nothing heavy."""
from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import fashionsearchnet

from tests.support.kiosk_block import KIOSK_BLOCK as BLOCK  # noqa: E402


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True)


def test_every_public_name_resolves_without_torch():
    r = _run("""
        import fashionsearchnet as f
        names = [n for n in f.__all__ if n != "__version__"]
        for n in names:
            getattr(f, n)
        from fashionsearchnet import Bundle, FeatureExtractor, Gallery, Request, FSNError  # the README's import
        leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not leaked, leaked
        print(len(names))
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout) == len(fashionsearchnet.__all__) - 1 >= 8


def test_importing_the_package_is_light():
    r = _run("""
        import fashionsearchnet
        heavy = [m for m in sys.modules if m.split(".")[0] in ("numpy", "cv2", "onnxruntime", "hnswlib")
                 or m.startswith("fashionsearchnet.")]
        assert not heavy, heavy
        print(fashionsearchnet.__version__)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == fashionsearchnet.__version__


@pytest.mark.parametrize("name", [n for n in fashionsearchnet.__all__ if n != "__version__"])
def test_public_name_is_the_defining_modules_object(name):
    module = importlib.import_module(f"fashionsearchnet.{fashionsearchnet._EXPORTS[name]}")
    assert getattr(fashionsearchnet, name) is getattr(module, name)
    assert name in dir(fashionsearchnet)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Galery'"):
        fashionsearchnet.Galery  # noqa: B018
    with pytest.raises(ImportError):
        exec("from fashionsearchnet import Galery", {})


def test_errors_base_class_is_every_errors_base():
    from fashionsearchnet import FSNError
    from fashionsearchnet import errors

    subclasses = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(subclasses) > 3 and all(issubclass(c, FSNError) for c in subclasses)


def test_version_matches_the_installed_distribution():
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("fashionsearchnet-edge")
    except PackageNotFoundError:
        pytest.skip("the package is not installed (running from a bare checkout)")
    assert fashionsearchnet.__version__ == installed
