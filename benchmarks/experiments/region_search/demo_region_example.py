"""The demo's region example over every query photo, not only the one the report shows: for each query row with
sleeves, the sleeve colour the demo's picker would ask for that row (the colour, unlike the query's torso and
sleeve, with the most gallery items that have it on the query's torso colour), searched through the same service
as ``fsn serve``; counts in the top K of the asked sleeve colour (``part``) and of the asked sleeve colour on the
query's colour (``full``, the demo's thick mark); the request and the marks are the demo's own
(``app/demo/examples.region_example`` on each query alone). Queries with fewer than K right answers are left out.

    .venv/bin/python -m benchmarks.experiments.region_search.demo_region_example \\
        --gallery DEMO/reference-gallery --data DEMO/reference-data --out OUT

Writes OUT.json and OUT.md (means, share of queries with a majority of each mark, the command and the machine).
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmarks._report import command, machine, write_report
from fashionsearchnet.app.demo.examples import region_example
from fashionsearchnet.app.gallery_service import GalleryService
from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.data.preprocess import read_image
from fashionsearchnet.search.request import Request


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gallery", required=True)
    ap.add_argument("--data", required=True, help="the catalogue the gallery indexes (its labels mark the results)")
    ap.add_argument("--out", required=True)
    ap.add_argument("-k", type=int, default=8)
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    sch, labels = ds.schema, ds.labels
    names = list(sch.names)
    part_truth = ds.region_labels["sleeve:color"]
    gallery = ds.indices("gallery")
    rel = {p.relative_to(ds.root).as_posix(): i for i, p in enumerate(ds.images)}
    rows = []
    svc = GalleryService(args.gallery, backend="ort")
    svc.load()
    try:
        for r in ds.indices("query"):
            if part_truth[r] < 0 or labels[r, names.index("sleeve")] == 0:
                continue
            ex = region_example(ds, [int(r)])  # the demo's own picker, on this query alone
            if ex is None:
                continue
            answers = sum(ex.hit(int(g)) == "full" for g in gallery)
            if answers < args.k:
                continue
            got = svc.search(read_image(ds.images[r]), Request.parse(ex.sets, sch), [], args.k)
            marks = [ex.hit(rel[hit["id"]]) for hit in got.results]
            rows.append((int(r), answers, marks.count("full"), marks.count("full") + marks.count("part")))
    finally:
        svc.close()
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    most = args.k // 2 + 1
    result = {"command": command(), "machine": machine(), "k": args.k, "queries": len(rows),
              "mean_part": round(float(arr[:, 3].mean()), 2), "mean_full": round(float(arr[:, 2].mean()), 2),
              "share_part_most": round(float((arr[:, 3] >= most).mean()), 3),
              "share_full_most": round(float((arr[:, 2] >= most).mean()), 3),
              "rows": [{"query": r, "answers": n, "full": f, "part": p} for r, n, f, p in rows]}
    md = ["# The demo's region example over every query photo", "", f"Command: `{command()}`", "",
          f"Machine: {machine()}", "",
          f"{len(rows)} query photos with sleeves and at least {args.k} right answers; top {args.k} of each.", "",
          "| mark | mean of the top K | queries where most of the top K have it |", "|---|---|---|",
          f"| asked sleeve colour (part) | {result['mean_part']} | {100 * result['share_part_most']:.1f} % |",
          f"| asked sleeve colour on the query's colour (full) | {result['mean_full']} | "
          f"{100 * result['share_full_most']:.1f} % |"]
    write_report(args.out, result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
