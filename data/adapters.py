"""Converters from public catalogue formats to the dataset format (attributes.csv + schema.json).

Images are not copied: ``image`` paths in the written CSV point back into the source folder (relative to
the output folder), so the converted dataset is a few kilobytes.

- DeepFashion, Category and Attribute Prediction benchmark: ``Anno/list_attr_cloth.txt`` (attribute name and
  type: 1 texture, 2 fabric, 3 shape, 4 part, 5 style), ``Anno/list_attr_img.txt`` (image then 1000 values of
  1 / -1 / 0), ``Anno/list_category_img.txt``, ``Eval/list_eval_partition.txt``, optional
  ``Anno/list_category_cloth.txt`` (category names); every file starts with a count line and a header line.
  As in the paper, the texture, shape and category attributes are kept; an image gets a texture (shape) value
  when exactly one attribute of that type is 1, else unknown; images with neither are dropped. Split: train
  stays train; val and test become the gallery, of which a stable 1 in 11 (by file name hash) are queries
  (the paper: 21,000 gallery and 2,000 query images).
- fashion-product-224 (``labels.csv`` + ``colour_variant_groups.csv``): the apparel subset with articleType,
  baseColour, usage, gender and season; item_id = the colour-variant group, so the ``item`` protocol asks for
  the same product in another colour. Split by a stable hash of the image name: 70% train, 25% gallery, 5% query.
- Shopping100k (not available here): write one row per image with its 12 attribute columns (empty cell where
  the attribute does not apply) and ``split`` from the paper's partition; see README "Dataset format".
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from fashionsearchnet.data.dataset import write_dataset
from fashionsearchnet.data.schema import Attribute, Schema
from fashionsearchnet.errors import DatasetError

DEEPFASHION_TYPES = {1: "texture", 3: "shape"}


def _hash_fraction(name: str) -> float:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def _listing(path: Path, min_cols: int = 2) -> list[tuple[int, list[str]]]:
    """(line number, cells) of a DeepFashion list file (count line and header line skipped), split on whitespace;
    every row must have at least ``min_cols`` cells."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found; point at the DeepFashion 'Category and Attribute Prediction' folder")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text; is this a DeepFashion list file?") from None
    if len(lines) < 2:
        raise DatasetError(f"{path}: line 1: expected a count line and a header line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(f"{path}: line 1: expected the number of entries, got {lines[0]!r}") from None
    rows = [(n, ln.split()) for n, ln in enumerate(lines[2:], start=3) if ln.strip()]
    if len(rows) != count:
        raise DatasetError(f"{path}: line 1 announces {count} entries but the file has {len(rows)}; file truncated?")
    for n, r in rows:
        if len(r) < min_cols:
            raise DatasetError(f"{path}: line {n}: {len(r)} cell(s), expected at least {min_cols} "
                               f"separated by spaces")
    return rows


def _int_cell(path: Path, n: int, cell: str, what: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise DatasetError(f"{path}: line {n}: {what} must be a whole number, got {cell!r}") from None


def deepfashion_to_dataset(src: str | Path, out: str | Path) -> Path:
    """Convert the DeepFashion attribute benchmark at ``src`` into a dataset folder ``out``."""
    src, out = Path(src).resolve(), Path(out).resolve()
    cloth_path = src / "Anno" / "list_attr_cloth.txt"
    cloth = _listing(cloth_path)
    attr_names = [" ".join(r[:-1]) for _, r in cloth]
    attr_types = [_int_cell(cloth_path, n, r[-1], "the attribute type (1-5)") for n, r in cloth]
    cat_path = src / "Anno" / "list_category_img.txt"
    categories = {r[0]: _int_cell(cat_path, n, r[1], "the category label") for n, r in _listing(cat_path)}
    cat_names_path = src / "Anno" / "list_category_cloth.txt"
    cat_names = [r[0] for _, r in _listing(cat_names_path, 1)] if cat_names_path.is_file() else []
    partition = {r[0]: r[1] for _, r in _listing(src / "Eval" / "list_eval_partition.txt")}
    rows: list[dict[str, str]] = []
    values: dict[str, set[str]] = {"texture": set(), "shape": set(), "category": set()}
    for ln, r in _listing(src / "Anno" / "list_attr_img.txt"):
        img, vals = r[0], r[1:]
        if len(vals) != len(attr_names):
            raise DatasetError(f"{src / 'Anno/list_attr_img.txt'}: line {ln}: {len(vals)} values, expected {len(attr_names)}")
        row = {"image": os.path.relpath(src / img, out), "split": "", "texture": "", "shape": ""}
        for kind in DEEPFASHION_TYPES.values():
            on = [attr_names[j] for j, v in enumerate(vals) if v == "1" and DEEPFASHION_TYPES.get(attr_types[j]) == kind]
            if len(on) == 1:
                row[kind] = on[0]
                values[kind].add(on[0])
        if not row["texture"] and not row["shape"]:
            continue
        c = categories.get(img)
        if c is not None:
            row["category"] = cat_names[c - 1] if 0 < c <= len(cat_names) else f"category_{c}"
            values["category"].add(row["category"])
        else:
            row["category"] = ""
        part = partition.get(img, "train")
        row["split"] = "train" if part == "train" else ("query" if _hash_fraction(img) < 1 / 11 else "gallery")
        rows.append(row)
    if not rows:
        raise DatasetError(f"{src}: no image has a texture or shape attribute; is this the attribute benchmark?")
    attrs = tuple(Attribute(k, tuple(sorted(v))) for k, v in values.items() if len(v) >= 2)
    keep = [a.name for a in attrs]
    return write_dataset(out, ["image", "split", *keep], [{k: r[k] for k in ("image", "split", *keep)} for r in rows],
                  Schema(attrs, ()))


FASHION_PRODUCT_ATTRS = ("articleType", "baseColour", "usage", "gender", "season")


def fashion_product_to_dataset(src: str | Path, out: str | Path, min_count: int = 5) -> Path:
    """Convert ../shared/data/fashion-product-224 (apparel subset) into a dataset folder ``out``.

    Values seen fewer than ``min_count`` times in the apparel subset become unknown (too rare to learn or search).
    """
    src, out = Path(src).resolve(), Path(out).resolve()
    labels = src / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"{labels}: not found; pass the fashion-product-224 folder")
    with open(labels, newline="", encoding="utf-8") as f:
        all_rows = [r for r in csv.DictReader(f) if r.get("masterCategory") == "Apparel"]
    groups: dict[str, str] = {}
    gpath = src / "colour_variant_groups.csv"
    if gpath.is_file():
        with open(gpath, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                groups[r["image"]] = f"G{r['group']}"
    counts: dict[str, dict[str, int]] = {a: {} for a in FASHION_PRODUCT_ATTRS}
    for r in all_rows:
        for a in FASHION_PRODUCT_ATTRS:
            v = (r.get(a) or "").strip()
            if v:
                counts[a][v] = counts[a].get(v, 0) + 1
    allowed = {a: {v for v, n in c.items() if n >= min_count} for a, c in counts.items()}
    rows = []
    for r in all_rows:
        h = _hash_fraction(r["image"])
        row = {"image": os.path.relpath(src / r["image"], out),
               "split": "train" if h < 0.70 else ("gallery" if h < 0.95 else "query"),
               "item_id": groups.get(r["image"], ""), "id": r.get("id", ""),
               "name": r.get("productDisplayName", "")}
        for a in FASHION_PRODUCT_ATTRS:
            v = (r.get(a) or "").strip()
            row[a] = v if v in allowed[a] else ""
        rows.append(row)
    attrs = tuple(Attribute(a, tuple(sorted(allowed[a]))) for a in FASHION_PRODUCT_ATTRS if len(allowed[a]) >= 2)
    header = ["image", "split", "item_id", *[a.name for a in attrs], "id", "name"]
    return write_dataset(out, header, [{k: r.get(k, "") for k in header} for r in rows], Schema(attrs, ()))

