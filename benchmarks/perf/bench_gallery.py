"""Gallery benchmark on synthetic features: ANN recall@K vs exact search, search latency, bytes per item, build rate.

Full run (the issue's targets; ~3 min on a quiet 2-core machine)::

    nice -n 10 .venv/bin/python -m benchmarks.perf.bench_gallery --items 100000 --out benchmarks/perf/results/gallery

Smoke test: ``--items 5000 --queries 50``. Writes ``OUT.json`` and ``OUT.md`` (a markdown table with the command
and machine). Features: A attributes with a few values each, representation = the value's prototype + noise
(planted structure like a trained model's), random lam and W; queries are gallery items (excluded from
their own results), searched plain, with one attribute manipulated, with two, with a metadata filter keeping 75%
and with a region request (fsn_region: set-0 candidates re-scored exactly). Every row compares the default
(approximate) search with ``exact=True`` on the same queries.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fashionsearchnet.data.schema import Schema
from fashionsearchnet.gallery.ann import HnswConfig
from fashionsearchnet.gallery.gallery import BundleRef, Gallery
from fashionsearchnet.search.params import SearchParams
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.table import FeatureTable

from benchmarks._report import command, machine, write_report


def synthetic_schema(A: int, values: int) -> Schema:
    names = ["category", "collar", "sleeve", "color", "pattern", "fabric", "fit", "length"][:A]
    d = {"attributes": [{"name": n, "values": [f"{n}{v}" for v in range(values)]} for n in names],
         "regions": {"sleeve": {"from": [names[min(2, A - 1)]], "attributes": [names[min(3, A - 1)]]},
                     "torso": {"from": [names[0]], "attributes": [names[min(3, A - 1)], names[min(4, A - 1)]],
                               "primary": True}}}
    return Schema.from_dict(d)


def synthetic(schema: Schema, n: int, D: int, G: int, seed: int) -> tuple[SearchParams, FeatureTable]:
    rng = np.random.default_rng(seed)
    A, P = len(schema.attributes), len(schema.region_pairs)
    protos = [rng.normal(size=(len(a.values), D)).astype(np.float32) for a in schema.attributes]
    params = SearchParams(schema, protos, rng.uniform(0.5, 1.5, (A + 1, A)).astype(np.float32),
                          (rng.normal(size=(A + 1, A * D, G)) / np.sqrt(A * D)).astype(np.float32))
    vals = np.stack([rng.integers(0, len(a.values), n) for a in schema.attributes], 1)
    reps = np.stack([protos[a][vals[:, a]] for a in range(A)], 1) + 0.6 * rng.normal(size=(n, A, D)).astype(np.float32)
    pair_attr = [schema.attr_index(a) for _, a in schema.region_pairs]
    region = np.stack([protos[a][vals[:, a]] for a in pair_attr], 1) + 0.8 * rng.normal(size=(n, P, D)).astype(np.float32)
    C = sum(schema.num_classes)
    probs = rng.dirichlet(np.ones(C), n).astype(np.float32)
    return params, FeatureTable(reps.astype(np.float32), region.astype(np.float32), probs)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile_ms(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--attributes", type=int, default=5)
    ap.add_argument("--values", type=int, default=6)
    ap.add_argument("--dim", type=int, default=64, help="D (edge preset 64)")
    ap.add_argument("--global-dim", type=int, default=128, help="G (edge preset 128)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=30)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=40)
    ap.add_argument("--ef", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/perf/results/gallery")
    args = ap.parse_args(argv)

    schema = synthetic_schema(args.attributes, args.values)
    params, table = synthetic(schema, args.items, args.dim, args.global_dim, args.seed)
    recs = [{"id": f"item{i:07d}", "item_id": f"sku{i}", "path": f"img/{i}.jpg",
             "metadata": {"stock": "yes" if i % 4 else "no"}} for i in range(args.items)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_gallery_"))
    try:
        hnsw = HnswConfig(M=args.M, ef_construction=args.ef_construction, ef=args.ef)
        g = Gallery.create(tmp / "g", schema, params, BundleRef("0" * 64, "synthetic", "fsn"), hnsw)
        t0 = time.perf_counter()
        g.add(table, recs, np.zeros((args.items, args.attributes, 4), np.float32))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        g.save()
        save_s = time.perf_counter() - t0
        gdir = g._gen_dir
        disk = {p.name: p.stat().st_size for p in gdir.iterdir()}
        del g
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        g = Gallery.open(tmp / "g")
        open_s = time.perf_counter() - t0
        rss_open = rss_bytes() - rss0
        index_bytes = sum(v for k, v in disk.items() if k.startswith("index_"))

        rng = np.random.default_rng(args.seed + 1)
        qrows = rng.choice(args.items, args.queries, replace=False)
        a0, a1 = schema.attributes[min(3, args.attributes - 1)], schema.attributes[1]
        region_pair = schema.region_pairs[0]
        requests = {
            "plain": Request(),
            "manipulated": Request(set=((a0.name, a0.values[1]),)),
            "two_attributes": Request(set=((a0.name, a0.values[1]), (a1.name, a1.values[2]))),
            "filtered_in_stock": Request(),
            "region (fsn_region)": Request(region=((region_pair[0], region_pair[1],
                                                     schema.attribute(region_pair[1]).values[1]),)),
        }
        rows = {}
        for name, req in requests.items():
            filters = ["stock=yes"] if name == "filtered_in_stock" else None
            hits, lat, lat_exact = 0, [], []
            for q in qrows:
                key = recs[q]["id"]
                t0 = time.perf_counter()
                a = g.search(key, req, k=args.k, filters=filters, exact=False)
                lat.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                b = g.search(key, req, k=args.k, filters=filters, exact=True)
                lat_exact.append(time.perf_counter() - t0)
                hits += len({r.row for r in a.results} & {r.row for r in b.results})
            rows[name] = {"request": req.to_strings(), "filters": filters or [],
                          f"recall@{args.k}": hits / (len(qrows) * args.k),
                          "p50_ms": percentile_ms(lat, 50), "p95_ms": percentile_ms(lat, 95),
                          "exact_p50_ms": percentile_ms(lat_exact, 50)}
        rss_searched = rss_bytes() - rss0  # + the exact path's cached global features and norms
        n = args.items
        result = {
            "command": command(),
            "machine": machine(),
            "load": os.getloadavg()[0],
            "items": n, "A": args.attributes, "D": args.dim, "G": args.global_dim, "P": len(schema.region_pairs),
            "hnsw": hnsw.to_dict(), "indices": args.attributes + 1, "k": args.k, "queries": len(qrows),
            "build_s": build_s, "build_items_per_s": n / build_s,
            "build_vectors_per_s": n * (args.attributes + 1) / build_s,
            "save_s": save_s, "open_s": open_s,
            "disk_bytes_per_item": sum(disk.values()) / n, "index_disk_bytes_per_item": index_bytes / n,
            "memory_bytes_per_item_rss": rss_open / n, "memory_bytes_per_item_rss_after_searches": rss_searched / n,
            "disk_files": disk, "searches": rows,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        f"# Gallery benchmark ({n} items, A={args.attributes}, D={args.dim}, G={args.global_dim}, "
        f"P={result['P']}, {args.attributes + 1} hnsw indices M={args.M} ef_construction={args.ef_construction} ef={args.ef})",
        "", f"Command: `{result['command']}`  ", f"Machine: {result['machine']}", "",
        f"| search | recall@{args.k} vs exact | p50 ms | p95 ms | exact p50 ms |", "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} `{' '.join(r['request']) or '-'}` {' '.join(r['filters'])} | {r[f'recall@{args.k}']:.4f} | "
                     f"{r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['exact_p50_ms']:.2f} |")
    lines += ["", "| measure | value |", "|---|---|",
              f"| index build from stored features | {result['build_items_per_s']:.0f} items/s "
              f"({result['build_vectors_per_s']:.0f} vectors/s over {args.attributes + 1} indices, {build_s:.1f} s) |",
              f"| save (atomic, fsync) / open (checksums verified) | {save_s:.1f} s / {open_s:.1f} s |",
              f"| disk bytes per item (all files) | {result['disk_bytes_per_item']:.0f} |",
              f"| disk bytes per item (hnsw indices only) | {result['index_disk_bytes_per_item']:.0f} |",
              f"| memory bytes per item (RSS growth on open) | {result['memory_bytes_per_item_rss']:.0f} |",
              f"| memory bytes per item after the searches above (+ the exact search's cached squared norms) | "
              f"{result['memory_bytes_per_item_rss_after_searches']:.0f} |", ""]
    write_report(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
