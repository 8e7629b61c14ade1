"""The demo's example searches: picked from the catalogue's query split, each with the rule that marks a result as
right, then run through the search service.

Each picker takes the dataset and its query rows and returns an :class:`Example` (or None when the catalogue has
nothing to show for it); :data:`PICKERS` is the order the report shows them in. To show another search, write a
picker and add it there: the report renders every example the same way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class Example:
    title: str
    explain: str
    query: str  # item id in the gallery, or an image file (a shopper's photo)
    sets: list[str]
    hit: Callable[[int], str]  # dataset row -> "full" | "part" | ""
    answer: Any = None
    took_ms: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)  # gallery item id -> dataset row


Picker = Callable[[Any, Sequence[int]], "Example | None"]


def _color_column(names: list[str]) -> int:
    return names.index("color") if "color" in names else len(names) - 1


def photo_example(ds: Any, qrows: Sequence[int]) -> Example:
    """A shopper's photo: the first query image as a file, no change; right = every attribute equal."""
    labels = ds.labels
    q = qrows[0]

    def hit_query(row: int) -> str:
        return "full" if np.array_equal(labels[row], labels[q]) else ""

    return Example("A shopper's photo", "The query is a photo (features extracted from the image file, as an upload "
                   "to the kiosk); results are the nearest items with no change. Marked: the same attributes.",
                   str(ds.images[q]), [], hit_query)


def attribute_example(ds: Any, qrows: Sequence[int]) -> Example:
    """A colour change: of the query rows, the (query, colour) pair with the most gallery items whose labels equal
    the target (the query's labels with that colour: what a right answer is), first query and colour on ties; the
    same rule as :func:`region_example`, so the example is a request the catalogue can answer."""
    schema = ds.schema
    names = list(schema.names)
    a_col = _color_column(names)
    colors = schema.attributes[a_col].values
    labels = ds.labels
    gallery = labels[ds.indices("gallery")]
    others = np.delete(np.arange(labels.shape[1]), a_col)
    best: tuple[int, int, int] | None = None  # (answers, query row, colour)
    for r in qrows:
        col = gallery[(gallery[:, others] == labels[r, others]).all(axis=1), a_col]  # colours of the same rest
        counts = np.bincount(col[col >= 0], minlength=len(colors))
        counts[labels[r, a_col]] = -1
        cand = int(np.argmax(counts))
        if best is None or counts[cand] > best[0]:
            best = (int(counts[cand]), int(r), cand)
    assert best is not None
    _, q2, target_c = best
    target = labels[q2].copy()
    target[a_col] = target_c

    def hit_color(row: int) -> str:
        if np.array_equal(labels[row], target):
            return "full"
        return "part" if labels[row, a_col] == target_c else ""

    return Example(f"Same, but {colors[target_c]}", f"Attribute manipulation (eq. 7): the query's colour "
                   f"representation is replaced by the {colors[target_c]} prototype. Marked: colour matches "
                   "(thin) / every attribute equals the target (thick).", ds.images[q2].relative_to(ds.root).as_posix(),
                   [f"{names[a_col]}={colors[target_c]}"], hit_color)


def region_example(ds: Any, qrows: Sequence[int]) -> Example | None:
    """A region colour change (sleeve colour where the catalogue has it) to a colour unlike the query's torso: of
    the query rows with sleeves, the (query, colour) pair with the most gallery items that have that sleeve colour
    on the query's torso colour (what a right answer is), first query and colour on ties."""
    region_key = next((k for k in ("sleeve:color",) if k in ds.region_labels), None)
    if region_key is None and ds.region_labels:
        region_key = next(iter(ds.region_labels))
    if not region_key:
        return None
    schema = ds.schema
    names = list(schema.names)
    labels = ds.labels
    reg, attr = region_key.split(":")
    a = names.index(attr)
    vals = schema.attributes[a].values
    rl = ds.region_labels[region_key]
    gallery = ds.indices("gallery")
    with_part = [r for r in qrows if rl[r] >= 0 and ("sleeve" not in names or labels[r, names.index("sleeve")] != 0)]
    best: tuple[int, int, int] | None = None  # (answers, query row, value)
    for r in with_part or list(qrows[:1]):
        for cand in range(len(vals)):
            if cand in (labels[r, a], rl[r]):  # unlike the torso (region-specific) and a change for the part
                continue
            n = int(((rl[gallery] == cand) & (labels[gallery, a] == labels[r, a])).sum())
            if best is None or n > best[0]:
                best = (n, int(r), cand)
    if best is None:
        return None
    _, q3, v = best

    def hit_region(row: int) -> str:
        if rl[row] != v:
            return ""
        return "full" if labels[row, a] == labels[q3, a] else "part"

    return Example(f"Only the {reg} in {vals[v]}", f"Region-specific manipulation (section 3.4): "
                   f"{reg}:{attr}={vals[v]} changes the {reg} region's {attr} and keeps the rest. "
                   f"Marked: {reg} {attr} is {vals[v]} (thin) / and the {attr} elsewhere is the query's "
                   "(thick).", ds.images[q3].relative_to(ds.root).as_posix(), [f"{reg}:{attr}={vals[v]}"], hit_region)


PICKERS: tuple[Picker, ...] = (photo_example, attribute_example, region_example)


def make_examples(ds: Any, pickers: Sequence[Picker] = PICKERS) -> list[Example]:
    """The example searches from the catalogue's query split (the first query row when it has none)."""
    qrows = [int(r) for r in ds.indices("query")] or [0]
    examples = [ex for pick in pickers if (ex := pick(ds, qrows)) is not None]
    rel = {str(p.relative_to(ds.root).as_posix()): i for i, p in enumerate(ds.images)}
    for ex in examples:
        ex.rows = rel
    return examples


def run_examples(ds: Any, service: Any, examples: Sequence[Example], k: int) -> None:
    """Run each example through ``service`` (a loaded :class:`SearchService`), timing it; fills ``answer``."""
    from fashionsearchnet.data.preprocess import read_image
    from fashionsearchnet.search.request import Request

    for ex in examples:
        t0 = time.perf_counter()
        query = read_image(ex.query) if Path(ex.query).is_absolute() else ex.query
        ex.answer = service.search(query, Request.parse(ex.sets, service.schema), [], k)
        ex.took_ms = (time.perf_counter() - t0) * 1e3
