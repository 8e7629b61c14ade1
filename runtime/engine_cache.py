"""TensorRT engine cache (pure file logic; no TensorRT needed, so CI tests it with a fake builder).

An engine is valid only for the bundle graph it was built from and the full build configuration: TensorRT
version, GPU (compute capability and name), platform, precision, max and opt batch of the optimisation profile and
the TF32 flag. All of it is in the key (a ``.json`` sidecar beside the engine, with the engine's sha256) and in the
file name (``engine_stem``), so two configurations never overwrite each other. A lookup whose sidecar key differs,
or whose engine bytes changed, is *stale*: rebuilt (logged, naming the file and why) when rebuilding is allowed,
else refused (EngineCacheError naming the differing fields). A stale engine is never deserialised.

Concurrency: :func:`ensure_engine` holds an exclusive lock file per engine while it looks up and builds, writes
the engine and then the sidecar through unique temporary files + fsync + rename. Two processes asking for the same
engine build it once; the second finds it cached. Folders (:func:`cache_dirs`): ``--cache DIR`` when given, else
``BUNDLE/engines`` and, when the bundle folder is read-only (a kiosk image), a per-bundle folder in the user cache
``$XDG_CACHE_HOME/fashionsearchnet/engines`` (``~/.cache`` when unset); engines shipped inside a read-only bundle
are still used. :func:`write_selection` records what ``fsn engines`` built, so the runtime opens those engines.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from fashionsearchnet.errors import EngineCacheError
from fashionsearchnet.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_DIR = "engines"
SELECTION_FILE = "selection.json"
KEY_FIELDS = ("graph_sha256", "tensorrt", "compute_capability", "gpu", "platform", "precision", "max_batch",
              "opt_batch", "tf32")
SELECTION_FIELDS = ("precision", "max_batch", "opt_batch", "tf32")


@dataclass(frozen=True)
class EngineKey:
    graph_sha256: str
    tensorrt: str  # full version: timing caches and engines are valid within one exact version
    compute_capability: str  # "8.7"
    gpu: str  # device name (in the file name; compute capability + TensorRT decide validity)
    platform: str
    precision: str
    max_batch: int
    opt_batch: int
    tf32: bool = False  # fp32 layers may use TF32 (Ampere+); off for parity builds

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def make_key(graph_sha256: str, tensorrt_version: str, compute_capability: tuple[int, int] | str, gpu: str,
             precision: str, max_batch: int, opt_batch: int, plat: str | None = None, tf32: bool = False) -> EngineKey:
    """Build a key (``compute_capability`` as (major, minor) or "major.minor")."""
    cc = compute_capability if isinstance(compute_capability, str) else f"{compute_capability[0]}.{compute_capability[1]}"
    return EngineKey(graph_sha256, str(tensorrt_version), cc, gpu, plat or f"{platform.system()}-{platform.machine()}",
                     precision, int(max_batch), int(opt_batch), bool(tf32))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "unknown"


def engine_stem(graph: str, key: EngineKey) -> str:
    """``backbone.fp16.b64o1.notf32.trt10.3.0.sm87.nvidia-jetson-agx-orin``: the build configuration, readable."""
    cc = key.compute_capability.replace(".", "")
    return (f"{graph}.{key.precision}.b{key.max_batch}o{key.opt_batch}.{'tf32' if key.tf32 else 'notf32'}"
            f".trt{key.tensorrt}.sm{cc}.{_slug(key.gpu)}")


def engine_paths(cache_dir: str | Path, graph: str, key: EngineKey) -> tuple[Path, Path]:
    """(engine file, sidecar json) of one graph for one build configuration."""
    d, stem = Path(cache_dir), engine_stem(graph, key)
    return d / f"{stem}.engine", d / f"{stem}.json"


def mismatches(stored: dict, expected: EngineKey) -> list[str]:
    """Fields where a stored key differs from the expected one, as ``field: stored -> expected`` (gpu name ignored)."""
    out = []
    for f in KEY_FIELDS:
        if f == "gpu":
            continue
        want = getattr(expected, f)
        got = stored.get(f, False if f == "tf32" else None)
        if str(got) != str(want):
            out.append(f"{f}: {got} -> {want}")
    return out


def lookup(cache_dir: str | Path, graph: str, expected: EngineKey, sha256_file) -> tuple[str, Path]:
    """Decide what to do with the cached engine of ``graph``.

    Returns ``("use", path)`` for a valid engine, ``("build", path)`` when none is cached, ``("stale", path)``
    when one is cached for another key, its sidecar is unreadable or its bytes changed.
    """
    eng, side = engine_paths(cache_dir, graph, expected)
    if not eng.is_file() or not side.is_file():
        return "build", eng
    return ("stale" if stale_reason(cache_dir, graph, expected, sha256_file) else "use"), eng


def stale_reason(cache_dir: str | Path, graph: str, expected: EngineKey, sha256_file) -> str | None:
    """Why a cached engine cannot be used (None when it can)."""
    eng, side = engine_paths(cache_dir, graph, expected)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return "sidecar unreadable"
    if not isinstance(meta, dict) or not isinstance(meta.get("key"), dict):
        return "sidecar unreadable"
    diffs = mismatches(meta["key"], expected)
    if diffs:
        return "built for another setup (" + "; ".join(diffs) + ")"
    if meta.get("sha256") != sha256_file(eng):
        return "engine file changed or corrupt since it was built (sha256 differs from its sidecar)"
    return None


def rebuild_command(bundle_path: str | Path, key: EngineKey) -> str:
    return (f"fsn engines {bundle_path}" + (" --fp16" if key.precision == "fp16" else "")
            + f" --max-batch {key.max_batch} --opt-batch {key.opt_batch}" + (" --tf32" if key.tf32 else ""))


def stale_error(cache_dir: str | Path, graph: str, expected: EngineKey, bundle_path: str | Path,
                sha256_file=None) -> EngineCacheError:
    """The error for a stale engine when rebuilding is not allowed (names the differing fields and the fix)."""
    eng, _ = engine_paths(cache_dir, graph, expected)
    if sha256_file is None:
        from fashionsearchnet.fileio import sha256_file  # noqa: PLC0415
    what = stale_reason(cache_dir, graph, expected, sha256_file) or "engine file changed since it was built"
    return EngineCacheError(f"{eng}: {what}; rebuild it: {rebuild_command(bundle_path, expected)}")


def write_sidecar(cache_dir: str | Path, graph: str, key: EngineKey, engine_sha256: str) -> Path:
    """Record the key and sha256 of a freshly built engine (atomically)."""
    _, side = engine_paths(cache_dir, graph, key)
    atomic_write_bytes(side, json.dumps({"key": key.to_dict(), "sha256": engine_sha256}, indent=2).encode("utf-8"))
    return side


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing) held for the ``with`` block (blocks until free)."""
    with open(path, "a+b") as f:
        try:
            import fcntl  # noqa: PLC0415
        except ImportError:  # Windows
            import msvcrt  # noqa: PLC0415

            f.seek(0)
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_engine(cache_dirs_: list[Path], graph: str, key: EngineKey, build: Callable[[], bytes], sha256_file,
                  rebuild: bool = True, bundle_path: str | Path = "BUNDLE") -> tuple[Path, str]:
    """A valid engine for ``graph``: ``(path, "use" | "build" | "rebuild")``.

    Looks in every folder of ``cache_dirs_`` (first = the one written to), under that folder's lock: a valid
    engine anywhere is used; else ``build()`` runs once and its bytes are written to the first folder; a stale
    engine there is rebuilt (logged with the file and why) or, with ``rebuild=False``, refused.
    """
    write_dir = cache_dirs_[0]
    for d in cache_dirs_[1:]:
        if lookup(d, graph, key, sha256_file)[0] == "use":
            return engine_paths(d, graph, key)[0], "use"
    eng, _ = engine_paths(write_dir, graph, key)
    with file_lock(eng.with_name(eng.stem + ".lock")):
        state, eng = lookup(write_dir, graph, key, sha256_file)
        if state == "use":
            return eng, "use"
        if state == "stale":
            if not rebuild:
                raise stale_error(write_dir, graph, key, bundle_path, sha256_file)
            log.warning("rebuilding TensorRT engine %s: %s", eng, stale_reason(write_dir, graph, key, sha256_file))
        else:
            log.info("building TensorRT engine %s (none cached)", eng)
        blob = build()
        atomic_write_bytes(eng, blob)
        write_sidecar(write_dir, graph, key, hashlib.sha256(blob).hexdigest())
        return eng, ("rebuild" if state == "stale" else "build")


def _writable(d: Path) -> bool:
    """Whether ``d`` exists (or can be created) and a file can be created in it."""
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=d)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def user_cache_root(env: dict | None = None) -> Path:
    """``$XDG_CACHE_HOME/fashionsearchnet/engines`` (``~/.cache`` when unset or not absolute)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path(env.get("HOME", str(Path.home()))) / ".cache"
    return root / "fashionsearchnet" / CACHE_DIR


def bundle_cache_id(bundle_path: str | Path) -> str:
    """A per-bundle folder name for the user cache: the bundle's folder name + its manifest's sha256 (12 hex)."""
    p = Path(bundle_path).resolve()
    try:
        h = hashlib.sha256((p / "manifest.json").read_bytes()).hexdigest()[:12]
    except OSError:
        h = hashlib.sha256(str(p).encode()).hexdigest()[:12]
    return f"{_slug(p.name)}-{h}"


def cache_dirs(bundle_path: str | Path, explicit: str | Path | None = None, env: dict | None = None) -> list[Path]:
    """Folders to look in, the first being the one written to.

    ``explicit`` (``--cache``) must be writable (EngineCacheError otherwise). Else ``BUNDLE/engines`` when the
    bundle folder is writable; when not, the user cache folder for this bundle (logged), with ``BUNDLE/engines``
    kept as a read-only place to find engines shipped with the bundle.
    """
    if explicit is not None:
        d = Path(explicit)
        if not _writable(d):
            raise EngineCacheError(f"--cache {d}: cannot create or write this folder; pick a writable folder")
        return [d]
    own = Path(bundle_path) / CACHE_DIR
    if _writable(own):
        return [own]
    user = user_cache_root(env) / bundle_cache_id(bundle_path)
    if not _writable(user):
        raise EngineCacheError(f"{own} and {user}: neither can be written (read-only bundle, no writable user "
                               "cache); set XDG_CACHE_HOME to a writable folder or pass --cache DIR")
    log.info("bundle folder %s is read-only; TensorRT engines are cached in %s", Path(bundle_path), user)
    return [user, own]


def write_selection(cache_dir: str | Path, precision: str, max_batch: int, opt_batch: int, tf32: bool) -> Path:
    """Record the configuration ``fsn engines`` built, for the runtime to open the same engines."""
    p = Path(cache_dir) / SELECTION_FILE
    sel = {"precision": precision, "max_batch": int(max_batch), "opt_batch": int(opt_batch), "tf32": bool(tf32)}
    atomic_write_bytes(p, json.dumps(sel, indent=2).encode("utf-8"))
    return p


def read_selection(dirs: list[Path]) -> dict | None:
    """The configuration recorded by the last ``fsn engines`` (first folder that has one), else None.

    A malformed file raises EngineCacheError (one line, with the fix)."""
    for d in dirs:
        p = Path(d) / SELECTION_FILE
        if not p.is_file():
            continue
        try:
            sel = json.loads(p.read_text(encoding="utf-8"))
            ok = (isinstance(sel, dict) and set(SELECTION_FIELDS) <= set(sel) and isinstance(sel["precision"], str)
                  and all(isinstance(sel[k], int) and not isinstance(sel[k], bool) and sel[k] >= 1
                          for k in ("max_batch", "opt_batch")) and isinstance(sel["tf32"], bool))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise EngineCacheError(f"{p}: not a valid engine selection (needs {', '.join(SELECTION_FIELDS)}); "
                                   "delete it and rerun fsn engines BUNDLE")
        return {k: sel[k] for k in SELECTION_FIELDS}
    return None
