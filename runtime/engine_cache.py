"""TensorRT engine cache keys (pure; no TensorRT needed, so CI tests them).

An engine is valid only for the bundle graph it was built from, the TensorRT version, the GPU's compute
capability, the platform, the precision and the optimisation profile it was built with. Each engine file
``<graph>.<precision>.engine`` sits beside a ``.json`` sidecar holding its key and sha256; a lookup whose key
differs is *stale*: rebuilt when a builder is available and rebuilding is allowed, else refused
(EngineCacheError naming the fields that differ). A stale engine is never deserialised.
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from fashionsearchnet.errors import EngineCacheError

CACHE_DIR = "engines"
KEY_FIELDS = ("graph_sha256", "tensorrt", "compute_capability", "gpu", "platform", "precision", "max_batch", "opt_batch")


@dataclass(frozen=True)
class EngineKey:
    graph_sha256: str
    tensorrt: str  # full version: timing caches and engines are valid within one exact version
    compute_capability: str  # "8.7"
    gpu: str  # device name, informative; compute capability + TensorRT decide validity
    platform: str
    precision: str
    max_batch: int
    opt_batch: int

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def make_key(graph_sha256: str, tensorrt_version: str, compute_capability: tuple[int, int] | str, gpu: str,
             precision: str, max_batch: int, opt_batch: int, plat: str | None = None) -> EngineKey:
    """Build a key (``compute_capability`` as (major, minor) or "major.minor")."""
    cc = compute_capability if isinstance(compute_capability, str) else f"{compute_capability[0]}.{compute_capability[1]}"
    return EngineKey(graph_sha256, str(tensorrt_version), cc, gpu, plat or f"{platform.system()}-{platform.machine()}",
                     precision, int(max_batch), int(opt_batch))


def mismatches(stored: dict, expected: EngineKey) -> list[str]:
    """Fields where a stored key differs from the expected one, as ``field: stored -> expected`` (gpu name ignored)."""
    out = []
    for f in KEY_FIELDS:
        if f == "gpu":
            continue
        want = getattr(expected, f)
        got = stored.get(f)
        if str(got) != str(want):
            out.append(f"{f}: {got} -> {want}")
    return out


def engine_paths(cache_dir: str | Path, graph: str, precision: str) -> tuple[Path, Path]:
    """(engine file, sidecar json) for one graph."""
    d = Path(cache_dir)
    return d / f"{graph}.{precision}.engine", d / f"{graph}.{precision}.json"


def lookup(cache_dir: str | Path, graph: str, expected: EngineKey, sha256_file) -> tuple[str, Path]:
    """Decide what to do with the cached engine of ``graph``.

    Returns ``("use", path)`` for a valid engine, ``("build", path)`` when none is cached, ``("stale", path)``
    when one is cached for another key (or its file changed). Never returns a stale engine as usable.
    """
    eng, side = engine_paths(cache_dir, graph, expected.precision)
    if not eng.is_file() or not side.is_file():
        return "build", eng
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "stale", eng
    if mismatches(meta.get("key", {}), expected):
        return "stale", eng
    if meta.get("sha256") != sha256_file(eng):
        return "stale", eng
    return "use", eng


def stale_error(cache_dir: str | Path, graph: str, expected: EngineKey, bundle_path: str | Path) -> EngineCacheError:
    """The error for a stale engine when rebuilding is not allowed (names the differing fields and the fix)."""
    eng, side = engine_paths(cache_dir, graph, expected.precision)
    try:
        diffs = mismatches(json.loads(side.read_text(encoding="utf-8")).get("key", {}), expected)
    except (OSError, json.JSONDecodeError):
        diffs = ["sidecar unreadable"]
    what = "; ".join(diffs) or "engine file changed since it was built"
    return EngineCacheError(
        f"{eng}: built for another setup ({what}); rebuild it: fsn engines {bundle_path}"
        + (" --fp16" if expected.precision == "fp16" else "") + f" --max-batch {expected.max_batch}"
    )


def write_sidecar(cache_dir: str | Path, graph: str, key: EngineKey, engine_sha256: str) -> Path:
    """Record the key and sha256 of a freshly built engine."""
    _, side = engine_paths(cache_dir, graph, key.precision)
    side.write_text(json.dumps({"key": key.to_dict(), "sha256": engine_sha256}, indent=2), encoding="utf-8")
    return side
