"""fsn convert {deepfashion,fashion-product} SRC OUT: write attributes.csv + schema.json for a public data set."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=["deepfashion", "fashion-product"], help="source format")
    p.add_argument("src", help="source folder (DeepFashion benchmark root, or fashion-product-224)")
    p.add_argument("out", help="output dataset folder (images are referenced, not copied)")


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.data.adapters import deepfashion_to_dataset, fashion_product_to_dataset
    from fashionsearchnet.data.dataset import load_dataset

    convert = deepfashion_to_dataset if args.format == "deepfashion" else fashion_product_to_dataset
    out = convert(args.src, args.out)
    ds = load_dataset(out)  # validate what was written
    log.info("wrote %s: %d rows, attributes %s", out, len(ds), ", ".join(ds.schema.names))
    return 0
