"""``fsn index ... --ray [ADDRESS]``: a catalogue's features extracted on a Ray cluster (local when no address).

Ray Data over the catalogue's rows (row number + image path), ``map_batches`` through an actor pool of
:class:`~fashionsearchnet.runtime.extractor.FeatureExtractor` instances (ONNX Runtime on CPU, one per actor),
the results collected on the driver, put back in catalogue order by row number and checked (every row exactly
once: a retried task cannot lose or duplicate a row). The gallery is then built and published by
:func:`~fashionsearchnet.gallery.indexer.index_catalogue` as for one process.

A worker that dies is restarted (``max_restarts``) and its task retried (``max_task_retries``). An image that
cannot be read is the driver's error as in one process (the FSNError raised in the actor, unwrapped).

Ray is optional (``pip install 'fashionsearchnet-edge[scale]'``): this module is imported only by ``--ray``;
the kiosk path never imports it.
"""
from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fashionsearchnet.errors import FSNError, GalleryError, UsageError

log = logging.getLogger(__name__)

FEATURES = ("attr_reps", "region_reps", "probs", "attr_boxes")
MAX_RESTARTS = 3  # per actor; each of its tasks is retried as often


def _ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise UsageError("--ray needs Ray: pip install 'fashionsearchnet-edge[scale]' (or 'ray[data]')") from None
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """One-line error when a Ray head at ``address`` (host:port or ray://host:port) does not accept a connection."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray {address}: give HOST:PORT of a Ray head (e.g. 10.0.0.1:6379), ray://HOST:PORT, "
                         f"or leave the address out for a local Ray")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise UsageError(f"--ray {address}: the Ray head does not answer ({e.strerror or e}); start it with "
                         f"`ray start --head` or check the address") from None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (a local one when None); returns True when this call started Ray
    (the caller shuts it down). An already initialised Ray (a test's, a notebook's) is used as it is."""
    ray = _ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        return False
    if address is not None:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as e:
            raise UsageError(f"--ray {address}: cannot join the Ray cluster ({str(e).splitlines()[0]})") from None
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


class ExtractorActor:
    """One FeatureExtractor per actor; a batch {"row", "path"} -> {"row", features...}."""

    def __init__(self, bundle_path: str, backend: str = "auto", threads: int = 1):
        from fashionsearchnet.runtime.extractor import FeatureExtractor

        self.fx = FeatureExtractor(bundle_path, backend=backend, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fashionsearchnet.gallery.indexer import normalized_boxes

        paths = [str(p) for p in batch["path"]]
        try:
            f = self.fx.extract(paths, batch_size=len(paths))
        except FSNError as e:  # Ray appends its own lines to the message on the way: keep ours apart
            e.fsn_message = str(e)  # type: ignore[attr-defined]
            raise
        return {"row": np.asarray(batch["row"], np.int64), "attr_reps": f.attr_reps, "region_reps": f.region_reps,
                "probs": f.probs, "attr_boxes": normalized_boxes(f.attr_boxes, f.aams.shape[-2:])}


def _user_error(e: BaseException) -> FSNError | None:
    """The FSNError an actor raised, from Ray's wrapping exceptions (None if there is none)."""
    seen: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, FSNError) and type(x).__module__ == FSNError.__module__:  # not Ray's dual-class copy
            return x
        stack += [x.__context__, x.__cause__, getattr(x, "cause", None)]  # popped last first: Ray's cause
    return None


def extract_rows_ray(bundle_path: str | Path, records: list[dict[str, Any]], batch_size: int = 32,
                     workers: int = 2, backend: str = "auto", actor_cls: type = ExtractorActor,
                     progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Features of every record, in record order, by an actor pool of ``workers`` extractors on the connected
    Ray cluster (:func:`connect` first). Raises the actors' FSNError (an unreadable image) as it is."""
    ray = _ray()
    n = len(records)
    ray.data.DataContext.get_current().raise_original_map_exception = True  # an actor's ImageError as it is
    ds = ray.data.from_items([{"row": i, "path": r["path"]} for i, r in enumerate(records)])
    out = ds.map_batches(actor_cls, fn_constructor_kwargs={"bundle_path": str(bundle_path), "backend": backend},
                         batch_size=batch_size, batch_format="numpy", concurrency=workers, num_cpus=1,
                         max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("row",) + FEATURES}
    try:
        for b in out.iter_batches(batch_size=None, batch_format="numpy"):
            for k in parts:
                parts[k].append(np.asarray(b[k]))
            if progress:
                progress(len(b["row"]))
    except Exception as e:  # noqa: BLE001 - Ray wraps what the actor raised
        user = _user_error(e)
        if user is not None:
            raise type(user)(getattr(user, "fsn_message", str(user))) from None
        raise GalleryError(f"Ray extraction failed: {type(e).__name__}: {str(e).strip().splitlines()[-1]}") from None
    rows = np.concatenate(parts["row"]) if parts["row"] else np.zeros(0, np.int64)
    order = np.argsort(rows, kind="stable")
    if len(rows) != n or not np.array_equal(rows[order], np.arange(n)):
        raise GalleryError(f"Ray extraction returned {len(rows)} rows for {n} images ({len(np.unique(rows))} "
                           f"distinct); rerun the command")
    return {k: np.concatenate(parts[k])[order] for k in FEATURES}
