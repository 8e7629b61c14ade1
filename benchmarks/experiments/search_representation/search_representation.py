"""Which search representation of a trained run searches best: the learned global one or simpler ones.

    .venv/bin/python -m benchmarks.experiments.search_representation.search_representation --run RUN --data DATA --out benchmarks/experiments/search_representation/results/NAME

A diagnostic of the fsn (and no_aam) search space on one catalogue, every variant through the same protocol
module and the same exact search (search/exact.py):

* ``<m>``: the method as trained: attribute representations (fc10_a), prototype substitution, learned
  lambda / W global representation (eq. 7), as ``fsn eval`` reports it;
* ``<m>_concat``: the same fc10_a features and prototypes, lambda = 1 and W = identity (plain concatenation);
* ``<m>_l2``: as ``_concat`` with each attribute's representation and each prototype L2-normalised, so that every
  attribute weighs the same in the distance (a paper-silent choice);
* ``<m>_probs``: the same model's classifier probabilities with the wanted value set to 1, searched as the
  attribute baseline does (what the backbone alone gives);
* ``attribute``: the attribute baseline of the run, if trained.

Run it on the training catalogue's own gallery/query split to choose, then on a held-out catalogue to report.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from benchmarks._report import command, machine, write_report

from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.evaluation.protocol import evaluate, markdown_table
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.training.evaluate import find_methods, method_features


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def variants(method: str, table: FeatureTable, model, meta: dict) -> dict[str, ExactSearcher]:
    """The searchers of one trained method (module docstring)."""
    schema, protos = meta["schema"], [np.asarray(p, np.float32) for p in meta["prototypes"]]
    if method == "attribute":
        params = SearchParams(schema, protos, model.lam.detach().numpy(), model.W.detach().numpy())
        return {"attribute": ExactSearcher(params, table, "attribute")}
    A, D = table.attr_reps.shape[1:]
    lam = model.lam.detach().numpy()
    ones, eye = np.ones_like(lam), np.broadcast_to(np.eye(A * D, dtype=np.float32), (A + 1, A * D, A * D))
    l2_table = FeatureTable(attr_reps=_unit(table.attr_reps), region_reps=table.region_reps, probs=table.probs)
    return {
        method: ExactSearcher(SearchParams(schema, protos, lam, model.W.detach().numpy()), table, "fsn"),
        f"{method}_concat": ExactSearcher(SearchParams(schema, protos, ones, eye), table, "fsn"),
        f"{method}_l2": ExactSearcher(SearchParams(schema, [_unit(p) for p in protos], ones, eye), l2_table, "fsn"),
        f"{method}_probs": ExactSearcher(SearchParams(schema, protos, lam, model.W.detach().numpy()), table,
                                         "attribute"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True, help="catalogue to search (its gallery and query splits)")
    ap.add_argument("--protocols", default="manipulation,adde")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    rows = np.union1d(ds.indices("gallery"), ds.indices("query"))
    searchers: dict[str, ExactSearcher] = {}
    for m in find_methods(args.run):
        feats, model, meta = method_features(args.run, m, ds, rows)
        searchers.update(variants(m, feats, model, meta))
    res = evaluate(ds, searchers, protocols=tuple(args.protocols.split(",")), seed=args.seed)
    md = ["# Search representations of one run side by side", "", f"Command: `{command()}`", "",
          f"Run: `{args.run}`; data: `{args.data}` (gallery {len(ds.indices('gallery'))}, query "
          f"{len(ds.indices('query'))}); machine: {machine()}", "",
          markdown_table(res, ks=(1, 5, 10, 30, 50)), "",
          "`<m>`: learned global representation (eq. 7); `_concat`: fc10_a concatenated (lambda 1, W identity); "
          "`_l2`: concatenated with each attribute's representation and prototype L2-normalised; `_probs`: the "
          "model's own classifier probabilities searched as the attribute baseline.", ""]
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
