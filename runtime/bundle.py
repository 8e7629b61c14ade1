"""Read a model bundle (written by ``fsn export``): verify every file's sha256, the format version and the
graphs, then expose the schema, preprocessing, method and search parameters. numpy only, no torch.

Layout: ``BUNDLE/manifest.json``, ``backbone.onnx``, ``heads.onnx``, ``params.npz`` (``prototypes_<a>``,
``lam``, ``W``). ``Bundle.sha256`` is the sha256 of ``manifest.json``, which lists the sha256 of every other
file, so it identifies the whole bundle; galleries bind to it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.errors import BundleError, SchemaError, UsageError
from fashionsearchnet.fileio import verify_checksums
from fashionsearchnet.runtime.roi_settings import RoiChoice
from fashionsearchnet.search.params import PARAMS_FILE, SearchParams, load_params

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "fsn-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPHS = ("backbone", "heads")
PARAMS = PARAMS_FILE


@dataclass
class Bundle:
    """A verified bundle folder. Open it with :meth:`Bundle.open`."""

    path: Path
    manifest: dict[str, Any]
    schema: Schema
    preprocessing: Preprocessing
    params: SearchParams
    sha256: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.manifest["method"])

    @property
    def precision(self) -> str:
        return str(self.manifest.get("precision", "fp32"))

    @property
    def roi(self) -> dict[str, Any]:
        """ROI parameters: ``aam_threshold`` (0.2 of the map's max), ``region_class_threshold`` (p > 0.1), and in
        calibrated bundles ``thresholds`` / ``upsample`` / ``heads`` (see :attr:`roi_choice`)."""
        return dict(self.manifest["roi"])

    @property
    def roi_choice(self) -> RoiChoice:
        """The boxes the heads pool and the boxes shown (``runtime/roi_settings.py``; old bundles: 0.2 for both)."""
        return RoiChoice.from_dict(self.manifest["roi"])

    def graph_path(self, name: str) -> Path:
        """Path of the ``backbone`` or ``heads`` ONNX graph."""
        if name not in GRAPHS:
            raise BundleError(f"{self.path}: unknown graph {name!r}; valid: {', '.join(GRAPHS)}")
        return self.path / self.manifest["graphs"][name]["file"]

    @classmethod
    def open(cls, path: str | Path) -> "Bundle":
        """Open and verify a bundle folder. Raises BundleError naming the file at fault and the fix."""
        root = Path(path)
        mpath = root / MANIFEST
        if not root.is_dir():
            raise BundleError(f"{root}: not a bundle folder (missing); run `fsn export RUN --out {root}`")
        if not mpath.is_file():
            raise BundleError(f"{mpath}: missing; this folder is not a bundle, run `fsn export RUN --out {root}`")
        raw = mpath.read_bytes()
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            line = getattr(e, "lineno", "?")
            raise BundleError(f"{mpath}: line {line}: invalid JSON; re-export the bundle") from None
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{mpath}: field 'format' is not {BUNDLE_FORMAT!r}; this is not an FSN bundle manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int):
            raise BundleError(f"{mpath}: field 'format_version' is missing or not an integer; re-export the bundle")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{mpath}: format_version {version} is newer than this runtime reads ({FORMAT_VERSION}); "
                "upgrade fashionsearchnet-edge or re-export with this version"
            )
        if version < 1:
            raise BundleError(f"{mpath}: format_version {version} is invalid; re-export the bundle")
        for key in ("files", "graphs", "schema", "preprocessing", "roi", "method"):
            if key not in manifest:
                raise BundleError(f"{mpath}: field {key!r} is missing; re-export the bundle")
        _check_field_types(manifest, mpath)
        files: dict[str, str] = manifest["files"]
        for g in GRAPHS:
            gfile = manifest["graphs"].get(g, {}).get("file")
            if not gfile:
                raise BundleError(f"{mpath}: graphs.{g}.file is missing; re-export the bundle")
            if gfile not in files:
                raise BundleError(f"{mpath}: graph {gfile} has no sha256 in 'files'; re-export the bundle")
        if PARAMS not in files:
            raise BundleError(f"{mpath}: {PARAMS} has no sha256 in 'files'; re-export the bundle")
        verify_checksums(root, files, BundleError, "manifest.json", "from the bundle",
                         "copy the whole bundle folder again or re-export it")
        try:
            schema = Schema.from_dict(manifest["schema"], source=f"{mpath} field 'schema'")
        except SchemaError as e:
            raise BundleError(str(e)) from None
        try:
            pre = Preprocessing.from_dict(manifest["preprocessing"])
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"{mpath}: field 'preprocessing' is malformed ({type(e).__name__}: {e}); re-export "
                              "the bundle") from None
        params = load_params(root / PARAMS, schema, manifest.get("region_weight"))
        digest = hashlib.sha256(raw).hexdigest()
        log.debug("opened bundle %s (sha256 %s, method %s)", root, digest[:12], manifest["method"])
        return cls(root, manifest, schema, pre, params, digest)


def _check_field_types(manifest: dict[str, Any], mpath: Path) -> None:
    """The manifest's fields have the types the runtime uses (a manifest can match its checksum and still be
    wrong: hand-edited, or written by a buggy tool)."""
    def bad(field: str, want: str, got: Any) -> BundleError:
        return BundleError(f"{mpath}: field {field!r} must be {want}, got {type(got).__name__} {got!r:.60}; "
                           "re-export the bundle")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    files = manifest["files"]
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise bad("files", "an object of file name -> sha256 string", files)
    graphs = manifest["graphs"]
    if not isinstance(graphs, dict) or not all(isinstance(graphs.get(g), dict) for g in GRAPHS):
        raise bad("graphs", f"an object with {' and '.join(GRAPHS)} objects", graphs)
    for g in GRAPHS:
        f = graphs[g].get("file")
        if f is not None and (not isinstance(f, str) or "/" in f or "\\" in f or f.startswith(".")):
            raise bad(f"graphs.{g}.file", "a file name inside the bundle", f)
    for key in ("schema", "preprocessing", "roi"):
        if not isinstance(manifest[key], dict):
            raise bad(key, "an object", manifest[key])
    for key in ("aam_threshold", "region_class_threshold"):
        if key in manifest["roi"] and not number(manifest["roi"][key]):
            raise bad(f"roi.{key}", "a number", manifest["roi"][key])
    try:
        RoiChoice.from_dict(manifest["roi"])
    except UsageError as e:
        raise BundleError(f"{mpath}: field {e}; re-export the bundle") from None
    if not isinstance(manifest["method"], str):
        raise bad("method", "a string", manifest["method"])
    if "region_weight" in manifest and not number(manifest["region_weight"]):
        raise bad("region_weight", "a number", manifest["region_weight"])
    if "precision" in manifest and not isinstance(manifest["precision"], str):
        raise bad("precision", "a string", manifest["precision"])
