"""Per-store galleries: the items of a chain gallery that pass metadata (or predicted-attribute) filters, copied
into a new gallery with their stored features, boxes and metadata (no re-extraction), bound to the same bundle
(``fsn update CHAIN --keep store=12 --out STORE``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fashionsearchnet.errors import FSNError, GalleryError, UsageError
from fashionsearchnet.gallery import store
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.search.table import FeatureTable


def cut_gallery(src: Gallery, keep: Sequence[str], out: str | Path) -> Gallery:
    """A new gallery at ``out`` with the live items of ``src`` that match every ``KEY=VALUE`` of ``keep`` (in
    ``src``'s order), published atomically; same schema, search parameters, hnsw settings and bundle."""
    if not keep:
        raise UsageError("--keep: give at least one KEY=VALUE (a metadata column, item_id or an attribute)")
    out = Path(out)
    if out.resolve() == src.root.resolve():
        raise UsageError(f"--out {out}: is the source gallery; give a new folder for the store gallery")
    if out.is_dir() and store.read_pointer(out) is not None:
        raise GalleryError(f"{out}: already holds a gallery; give a new --out or delete it first")
    try:
        mask = src.filter_mask(list(keep))
    except FSNError as e:  # the filter's own messages, in this command's words
        raise type(e)(str(e).replace("--filter", "--keep")) from None
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        raise GalleryError(f"--keep {' '.join(keep)}: no item of {src.root} matches; check the values with "
                           f"`fsn search {src.root} ID --json` (metadata columns: {', '.join(src.metadata_columns)})")
    f = src.features
    table = FeatureTable(f.attr_reps[rows], f.region_reps[rows], f.probs[rows])
    g = Gallery.create(out, src.schema, src.params, src.bundle, src.hnsw)
    g.add(table, [src.records[r] for r in rows], src.boxes[rows])
    g.save()
    return g
