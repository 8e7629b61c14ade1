"""Dataset folders: ``attributes.csv`` (+ optional ``schema.json``), validated before any work starts.

CSV columns: ``image`` (path relative to the CSV), optional ``split`` (train | gallery | query), optional
``item_id``, one column per image-level attribute (empty cell = unknown), optional region truth columns
``region:attribute`` (evaluation only). With ``schema.json`` every other column is metadata (SKU, price...);
without it every other column is an attribute whose values are the sorted distinct non-empty cells.
Without a ``split`` column rows get a stable split from a hash of the image path (80% train, 15% gallery,
5% query), so the same file always lands in the same split.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from fashionsearchnet.data.schema import Attribute, Schema
from fashionsearchnet.errors import DatasetError, SchemaError
from fashionsearchnet.fileio import atomic_write_text

CSV_NAME = "attributes.csv"
SCHEMA_NAME = "schema.json"
RESERVED = ("image", "split", "item_id")
SPLITS = ("train", "gallery", "query")
UNKNOWN = -1
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF", b"GIF8", b"II*\x00", b"MM\x00*")
_LFS_PREFIX = b"version https://git-lfs"


@dataclass
class Dataset:
    """A validated dataset. Row ``i`` of every array is CSV data row ``i`` (at CSV line ``lines[i]``)."""

    root: Path
    schema: Schema
    images: list[Path]  # absolute paths
    splits: np.ndarray  # (N,) str: train | gallery | query
    item_ids: list[str | None]
    labels: np.ndarray  # (N, A) int32 value index into schema.attributes[a].values, -1 = unknown
    region_labels: dict[str, np.ndarray] = field(default_factory=dict)  # "sleeve:color" -> (N,) int32, -1 unknown
    metadata: list[dict[str, str]] = field(default_factory=list)  # other CSV columns, per row
    lines: np.ndarray | None = None  # (N,) CSV line numbers
    image_cells: list[str] = field(default_factory=list)  # the CSV 'image' cells as written (relative paths)

    def __len__(self) -> int:
        return len(self.images)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split (``train``, ``gallery``, ``query``) or ``all``."""
        if split == "all":
            return np.arange(len(self), dtype=np.int64)
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}, all")
        return np.flatnonzero(self.splits == split).astype(np.int64)

    def subset(self, idx: Iterable[int]) -> "Dataset":
        idx = np.asarray(list(idx), dtype=np.int64)
        return Dataset(
            root=self.root,
            schema=self.schema,
            images=[self.images[i] for i in idx],
            splits=self.splits[idx],
            item_ids=[self.item_ids[i] for i in idx],
            labels=self.labels[idx],
            region_labels={k: v[idx] for k, v in self.region_labels.items()},
            metadata=[self.metadata[i] for i in idx] if self.metadata else [],
            lines=None if self.lines is None else self.lines[idx],
            image_cells=[self.image_cells[i] for i in idx] if self.image_cells else [],
        )

    def label_dict(self, i: int) -> dict[str, str | None]:
        """Row ``i``'s image-level labels by name (None = unknown)."""
        return {
            a.name: (a.values[v] if v >= 0 else None) for a, v in zip(self.schema.attributes, self.labels[i])
        }


def stable_split(path: str) -> str:
    """80/15/5 train/gallery/query split from a hash of the relative image path."""
    h = int(hashlib.sha1(path.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("gallery" if h < 95 else "query")


def write_dataset(out: str | Path, header: list[str], rows: list[dict[str, str]], schema: Schema) -> Path:
    """Write a dataset folder's ``schema.json`` and ``attributes.csv`` (each atomically); the inverse of load_dataset."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / SCHEMA_NAME, schema.to_json() + "\n")
    atomic_write_text(out / CSV_NAME, buf.getvalue())
    return out


def check_image_file(path: Path) -> str | None:
    """Cheap check without decoding: returns a problem description or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        return "image file not found"
    except IsADirectoryError:
        return "image path is a folder, not a file"
    except OSError as e:
        return f"image cannot be read ({e.strerror})"
    if not head:
        return "image file is empty (0 bytes)"
    if head.startswith(_LFS_PREFIX):
        return "image is a Git-LFS pointer file, not the image; run 'git lfs pull' in the data repository"
    if not head.startswith(_IMAGE_MAGIC):
        return "file is not a JPEG/PNG/BMP/WEBP/GIF/TIFF image"
    return None


def _infer_schema(header: list[str], rows: list[dict[str, str]]) -> Schema:
    attr_cols = [c for c in header if c not in RESERVED and ":" not in c]
    values: dict[str, set[str]] = {c: set() for c in attr_cols}
    for row in rows:
        for c in header:
            cell = (row.get(c) or "").strip()
            if not cell or c in RESERVED:
                continue
            target = c.split(":", 1)[1] if ":" in c else c
            if target in values:
                values[target].add(cell)
    attrs = []
    for c in attr_cols:
        vals = sorted(values[c])
        if len(vals) < 2:
            raise DatasetError(
                f"column {c!r} has fewer than 2 distinct values; remove it or list it in schema.json as metadata"
            )
        attrs.append(Attribute(c, tuple(vals)))
    return Schema(tuple(attrs), ())


def load_dataset(folder: str | Path, check_images: bool = True) -> Dataset:
    """Load and validate a dataset folder; raises DatasetError listing every bad row with its line."""
    root = Path(folder).expanduser().resolve()
    csv_path = root / CSV_NAME
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; pass a folder that holds {CSV_NAME}")
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: not found; a dataset folder needs {CSV_NAME} (see README, 'Dataset format')")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows, lines = [], []
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DatasetError(f"{csv_path}: not UTF-8 text; save the CSV as UTF-8") from None
    except csv.Error as e:
        raise DatasetError(f"{csv_path}: malformed CSV ({e}); fix the quoting") from None
    if not header or "image" not in header:
        raise DatasetError(f"{csv_path}: line 1: header needs an 'image' column (path relative to the CSV)")
    if len(set(header)) != len(header):
        raise DatasetError(f"{csv_path}: line 1: a column name appears twice in the header")
    if not rows:
        raise DatasetError(f"{csv_path}: no data rows; add one row per image below the header")

    schema_path = root / SCHEMA_NAME
    try:
        schema = Schema.load(schema_path) if schema_path.is_file() else _infer_schema(header, rows)
    except SchemaError as e:
        raise DatasetError(str(e)) from None

    problems: list[str] = []
    names = schema.names
    missing = [n for n in names if n not in header]
    if missing:
        raise DatasetError(f"{csv_path}: line 1: schema attribute(s) {', '.join(missing)} have no column; add them")
    region_cols = [c for c in header if ":" in c]
    for c in region_cols:
        reg, attr = c.split(":", 1)
        if attr not in names:
            problems.append(f"{csv_path}: line 1: column {c!r} names unknown attribute {attr!r}; valid: {', '.join(names)}")
        elif schema.regions and reg not in {r.name for r in schema.regions}:
            valid = ", ".join(r.name for r in schema.regions)
            problems.append(f"{csv_path}: line 1: column {c!r} names unknown region {reg!r}; valid: {valid}")
    if problems:
        raise DatasetError(problems)
    meta_cols = [c for c in header if c not in RESERVED and c not in names and ":" not in c]

    n = len(rows)
    labels = np.full((n, len(names)), UNKNOWN, dtype=np.int32)
    region_labels = {c: np.full(n, UNKNOWN, dtype=np.int32) for c in region_cols}
    images: list[Path] = []
    image_cells: list[str] = []
    splits = np.empty(n, dtype=object)
    item_ids: list[str | None] = []
    metadata: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for i, (row, line) in enumerate(zip(rows, lines)):
        where = f"{csv_path}: line {line}"
        if None in row:
            problems.append(f"{where}: more cells than header columns; quote cells that contain commas")
        rel = (row.get("image") or "").strip()
        image_cells.append(rel)
        if not rel:
            problems.append(f"{where}: empty 'image' cell; give the image path relative to the CSV")
            images.append(root)
        else:
            try:
                p = (root / rel).resolve()
            except (RuntimeError, OSError) as e:  # a symlink loop
                problems.append(f"{where}: field 'image' = {rel!r}: the path cannot be resolved ({e}); fix the symlink")
                p = root / rel
            images.append(p)
            if rel in seen:
                problems.append(f"{where}: duplicate row for image {rel!r} (first at line {seen[rel]}); remove one")
            else:
                seen[rel] = line
            if check_images:
                bad = check_image_file(p)
                if bad:
                    problems.append(f"{where}: field 'image' = {rel!r}: {bad}")
        sp = (row.get("split") or "").strip() if "split" in header else ""
        if "split" in header and sp not in SPLITS:
            problems.append(f"{where}: field 'split' = {sp!r}: must be one of {', '.join(SPLITS)}")
        splits[i] = sp if sp in SPLITS else stable_split(rel)
        iid = (row.get("item_id") or "").strip() if "item_id" in header else ""
        item_ids.append(iid or None)
        for a_i, attr in enumerate(schema.attributes):
            cell = (row.get(attr.name) or "").strip()
            if cell:
                if cell in attr.values:
                    labels[i, a_i] = attr.values.index(cell)
                else:
                    problems.append(
                        f"{where}: field {attr.name!r} = {cell!r}: unknown value; valid: {', '.join(attr.values)}"
                    )
        for c in region_cols:
            cell = (row.get(c) or "").strip()
            attr_name = c.split(":", 1)[1]
            if cell and attr_name in names:
                attr = schema.attribute(attr_name)
                if cell in attr.values:
                    region_labels[c][i] = attr.values.index(cell)
                else:
                    problems.append(f"{where}: field {c!r} = {cell!r}: unknown value; valid: {', '.join(attr.values)}")
        metadata.append({c: (row.get(c) or "") for c in meta_cols})
    if problems:
        raise DatasetError(problems)
    return Dataset(
        root=root,
        schema=schema,
        images=images,
        splits=splits.astype(str),
        item_ids=item_ids,
        labels=labels,
        region_labels=region_labels,
        metadata=metadata,
        lines=np.asarray(lines, dtype=np.int64),
        image_cells=image_cells,
    )
