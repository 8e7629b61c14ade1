"""Writing a synthetic catalogue: splits, the plan of designs, parallel seeded rendering, images, masks and labels."""
from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fashionsearchnet.data.dataset import write_dataset
from fashionsearchnet.data.schema import Schema
from fashionsearchnet.data.synth.designs import REGION_COLUMNS, Design, label_row, plan_catalogue
from fashionsearchnet.data.synth.photography import render
from fashionsearchnet.data.synth.profiles import CLOSE_UP, check_profile, synthetic_schema
from fashionsearchnet.errors import UsageError

DEFAULT_SPLITS = (0.75, 0.20, 0.05)


def _render_chunk(out: str, seed: int, size: int, masks: bool, close_up: float,
                  chunk: list[tuple[int, str, Design]]) -> int:
    """Render and write the images (and masks) of one chunk of the plan; returns how many."""
    cv2.setNumThreads(1)
    for i, _, design in chunk:
        img, lab = render(design, size, np.random.default_rng([seed, 3, i]), close_up)
        stem = f"{i:06d}"
        if not cv2.imwrite(os.path.join(out, "images", f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {out}/images/{stem}.jpg")
        if masks and not cv2.imwrite(os.path.join(out, "masks", f"{stem}.png"), lab):
            raise OSError(f"could not write {out}/masks/{stem}.png")
    return len(chunk)


def default_workers(count: int) -> int:
    """Processes for rendering: one per CPU (at most 16); one for small catalogues (start-up would dominate)."""
    return 1 if count < 400 else max(1, min(os.cpu_count() or 1, 16))


def generate(out: str | Path, count: int, seed: int = 0, size: int = 128,
             splits: tuple[float, float, float] = DEFAULT_SPLITS, masks: bool = True,
             progress: Callable[[int], None] | None = None, workers: int | None = None,
             profile: str = "basic") -> Path:
    """Write ``count`` synthetic catalogue photos with labels to ``out``; deterministic for a seed.

    ``profile`` is ``basic`` (5 attributes), ``detailed`` (8: adds fastening, pocket and print), ``hard`` (12: adds
    fit, hem, fabric and cuff) or ``ambiguous`` (the hard profile's labels, with close-ups and overlapping shades).

    ``workers`` processes render in parallel (default :func:`default_workers`); the output is the same for any
    number of workers.
    """
    if count <= 0:
        raise UsageError(f"--count must be a positive number of images, got {count}")
    if not 32 <= size <= 1024:
        raise UsageError(f"--size must be between 32 and 1024 pixels, got {size}")
    check_profile(profile)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    fr = np.asarray(splits, np.float64)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1) > 1e-6:
        raise UsageError(f"--splits must be three fractions train,gallery,query summing to 1, got {splits}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if masks:
        (out / "masks").mkdir(exist_ok=True)
    header, rows, schema, plan = catalogue_rows(count, seed, splits, profile)
    n_workers = default_workers(count) if workers is None else workers
    chunks = [plan[k:k + 64] for k in range(0, count, 64)]
    job = functools.partial(_render_chunk, str(out), seed, size, masks, CLOSE_UP if profile == "ambiguous" else 0.0)
    if n_workers == 1:
        done = map(job, chunks)
        pool = None
    else:
        import multiprocessing

        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
        done = pool.map(job, chunks)
    try:
        for n in done:
            if progress:
                progress(n)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return write_dataset(out, header, rows, schema)


def catalogue_rows(count: int, seed: int = 0, splits: tuple[float, float, float] = DEFAULT_SPLITS,
                   profile: str = "basic") -> tuple[list[str], list[dict[str, str]], Schema, list]:
    """(attributes.csv header, its rows, schema, plan) of the catalogue :func:`generate` writes, without drawing
    a pixel (the labels, splits and item ids depend on the seed only): for counting a catalogue's requests."""
    check_profile(profile)
    fr = np.asarray(splits, np.float64)
    schema = synthetic_schema(profile)
    header = ["image", "split", "item_id", *schema.names, *REGION_COLUMNS]
    split_draw = np.random.default_rng([seed, 1]).random(count)
    split_names = np.where(split_draw < fr[0], "train", np.where(split_draw < fr[0] + fr[1], "gallery", "query"))
    plan = plan_catalogue(count, seed, profile)
    rows = [{"image": f"images/{i:06d}.jpg", "split": str(split_names[i]), "item_id": item, **label_row(d)}
            for i, item, d in plan]
    return header, rows, schema, plan
