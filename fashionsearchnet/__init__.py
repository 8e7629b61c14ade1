"""FashionSearchNet Edge: attribute- and region-manipulable fashion search on kiosks.

The public API an integrator needs, importable from the top level::

    from fashionsearchnet import Bundle, FeatureExtractor, Gallery, Request

Names are imported on first use (module ``__getattr__``), so ``import fashionsearchnet`` is light and never imports
torch: everything listed here runs on a kiosk install (numpy, OpenCV, ONNX Runtime, hnswlib). Deeper modules are
implementation; their names may move between releases, these do not.
"""
from __future__ import annotations

import importlib
import os as _os
from typing import TYPE_CHECKING, Any

# OpenCV reads its pixel limit once, when cv2 is imported: set it here, before any module of the package imports
# cv2, as a second guard behind data/imageheader.py (keep equal to data.preprocess.MAX_PIXELS; an operator's
# own value wins).
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    # an exported model: ONNX graphs + schema + search parameters, sha256-checked on open
    "Bundle": "runtime.bundle",
    # images -> predictions, attention boxes and per-attribute / per-region representations
    "FeatureExtractor": "runtime.extractor",
    "Features": "runtime.extractor",
    # a published, crash-safe search index: open, search, add / remove / update, save
    "Gallery": "gallery.gallery",
    "SearchResult": "gallery.gallery",
    "Result": "gallery.gallery",
    # build a gallery from a catalogue folder with a bundle (what `fsn index` does)
    "index_catalogue": "gallery.indexer",
    # a search request ("attr=value", "region:attr=value") and the query's features in search form
    "Request": "search.request",
    "FeatureTable": "search.table",
    # the attribute / value / region vocabulary of a catalogue and a bundle
    "Schema": "data.schema",
    # the base class of every error this package raises on bad input (one line saying what to do)
    "FSNError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fashionsearchnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from fashionsearchnet.data.schema import Schema
    from fashionsearchnet.errors import FSNError
    from fashionsearchnet.gallery.gallery import Gallery, Result, SearchResult
    from fashionsearchnet.gallery.indexer import index_catalogue
    from fashionsearchnet.search.request import Request
    from fashionsearchnet.search.table import FeatureTable
    from fashionsearchnet.runtime.bundle import Bundle
    from fashionsearchnet.runtime.extractor import FeatureExtractor, Features
