"""Experiment (issue 22, not adopted): build the plain space's hnsw graph once and reuse it for the manipulated
spaces by swapping in their vectors (hnswlib's pickle state: ``data_level0`` holds each element's links, vector
and label at ``offset_data`` / ``label_offset``), instead of building six graphs.

    .venv/bin/python -m benchmarks.perf.bench_hnsw_transplant --items 100000 --seed-graph 16:40
        [--out benchmarks/perf/results/hnsw_transplant]

Reports the build time (one graph + five vector swaps) and recall@30 against exact search in every manipulated
space at query ef 128 / 192 / 256 (same synthetic features and queries as bench_hnsw_build.py).
"""
from __future__ import annotations

import argparse
import sys
import time

import hnswlib
import numpy as np

from benchmarks._report import command, machine, write_report
from benchmarks.perf.bench_gallery import synthetic, synthetic_schema
from benchmarks.perf.bench_hnsw_build import exact_topk_space
from fashionsearchnet.gallery import ann
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.search.projection import global_representation

EFS = (128, 192, 256)


def transplant(state: dict, vectors: np.ndarray) -> hnswlib.Index:
    """A copy of the index in ``state`` (``Index.__getstate__()[0]``) whose element vectors are ``vectors[label]``."""
    d = np.array(state["data_level0"], copy=True).view(np.uint8).reshape(-1, state["size_data_per_element"])
    labels = d[:, state["label_offset"]:state["label_offset"] + 8].copy().view(np.uint64).ravel()
    off, nbytes = state["offset_data"], vectors.shape[1] * 4
    d[:, off:off + nbytes] = np.ascontiguousarray(vectors[labels], np.float32).view(np.uint8).reshape(len(labels), -1)
    return hnswlib.Index({**state, "data_level0": d.reshape(-1).view(state["data_level0"].dtype)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed-graph", default="16:40", help="M:ef_construction of the one graph built")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/perf/results/hnsw_transplant")
    args = ap.parse_args(argv)
    M, efc = (int(x) for x in args.seed_graph.split(":"))
    schema = synthetic_schema(5, 6)
    params, table = synthetic(schema, args.items, 64, 128, args.seed)
    qrows = np.random.default_rng(args.seed + 1).choice(args.items, args.queries, replace=False)

    def recall(idx, F, ef):
        truth = exact_topk_space(F, F[qrows], 30)
        lab = np.concatenate([ann.query(idx, F[q:q + 1], 30, ef)[0] for q in qrows])
        return sum(len(set(a) & set(b)) for a, b in zip(lab, truth)) / (len(qrows) * 30)

    t0 = time.perf_counter()
    F0 = global_representation(table.attr_reps, params.lam, params.W, 0)
    idx0 = ann.new_index(F0.shape[1], args.items, HnswConfig(M=M, ef_construction=efc))
    ann.add(idx0, F0, np.arange(args.items))
    total = time.perf_counter() - t0
    state = idx0.__getstate__()[0]
    rows = [{"set": 0, "how": "built", "seconds": total, **{f"recall_ef{e}": recall(idx0, F0, e) for e in EFS}}]
    for s in range(1, len(schema.attributes) + 1):
        t0 = time.perf_counter()
        Fs = global_representation(table.attr_reps, params.lam, params.W, s)
        idx = transplant(state, Fs)
        dt = time.perf_counter() - t0
        total += dt
        rows.append({"set": s, "how": "graph of set 0, own vectors", "seconds": dt,
                     **{f"recall_ef{e}": recall(idx, Fs, e) for e in EFS}})
        print(rows[-1], flush=True)
    res = {"command": command(), "machine": machine(), "items": args.items, "seed_graph": {"M": M, "ef_construction": efc},
           "rows": rows, "items_per_s_6_indices": args.items / total}
    md = [f"# hnsw graph transplant ({args.items} synthetic items, seed graph M={M}, ef_construction={efc})", "",
          f"Command: `{res['command']}`  ", f"Machine: {res['machine']}", "",
          "| set | index | seconds | " + " | ".join(f"recall@30 ef={e}" for e in EFS) + " |",
          "|---|---|---|" + "---|" * len(EFS)]
    for r in rows:
        md.append(f"| {r['set']} | {r['how']} | {r['seconds']:.2f} | " +
                  " | ".join(f"{r[f'recall_ef{e}']:.4f}" for e in EFS) + " |")
    md += ["", f"Six indices in {total:.1f} s = {res['items_per_s_6_indices']:.0f} items/s; recall in the manipulated "
           "spaces falls below 0.99, so the gallery does not use this.", ""]
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
