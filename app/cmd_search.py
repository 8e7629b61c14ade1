"""fsn search GALLERY [QUERY] [--set attr=value]... [--set region:attr=value]... [-k K] [--filter key=value]...
[--json] [--explain OUT.png]: QUERY is a gallery item id (image path relative to the catalogue, or a unique
item_id) or an image file (features extracted with the gallery's bundle). Without QUERY the --set values
describe the item: a query composed from attribute prototypes (search/compose.py)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fashionsearchnet.app import backend_options

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gallery", help="gallery folder written by 'fsn index'")
    p.add_argument("query", nargs="?", default=None,
                   help="gallery item id or an image file; leave it out to search by the --set values alone")
    p.add_argument("--set", action="append", default=[], metavar="ATTR=VALUE",
                   help="manipulate an attribute (repeatable); region:attr=value for a region-specific change")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep results whose predicted attribute or metadata column has this value (repeatable)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--explain", metavar="OUT.png", help="draw the query with its attribute boxes and the results")
    p.add_argument("--exact", action="store_true", help="exact search instead of the hnsw indices")
    p.add_argument("--bundle", help="bundle for image queries (default: the one the gallery was built with)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "trt", "openvino"), help="backend for image queries")
    backend_options.add_arguments(p)


def printable(text: object) -> str:
    """``text`` with every non-printable character (terminal control codes, newlines) written as an escape, so
    catalogue data cannot drive the terminal it is printed on."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.data.preprocess import read_image
    from fashionsearchnet.errors import GalleryError, UsageError
    from fashionsearchnet.search.compose import require_description
    from fashionsearchnet.gallery.gallery import Gallery
    from fashionsearchnet.search.table import FeatureTable
    from fashionsearchnet.search.request import Request

    g = Gallery.open(args.gallery)
    request = Request.parse(args.set, g.schema)
    query: str | FeatureTable | None = args.query
    qimage, qboxes, qpred = None, None, None
    known = args.query is None or args.query in g._by_id or args.query in g._by_item
    if args.query is None:
        require_description(request, g.schema)  # no QUERY and no --set: the valid attributes
        if args.explain:
            raise UsageError("--explain draws the query image; a search by --set values alone has none: "
                             "leave out --explain or give a QUERY")
    elif not known and Path(args.query).is_file():
        from fashionsearchnet.gallery.indexer import normalized_boxes
        from fashionsearchnet.runtime.bundle import Bundle
        from fashionsearchnet.runtime.extractor import FeatureExtractor

        bundle = Bundle.open(args.bundle or g.bundle.path)
        g.check_bundle(bundle)
        with FeatureExtractor(bundle, backend=backend_options.backend_choice(args)) as fx:
            f = fx.extract([args.query], batch_size=1)
        query = f.to_table()
        qimage, qboxes = read_image(args.query), normalized_boxes(f.attr_boxes, f.aams.shape[-2:])[0]
        qpred = f.predicted[0]
    elif not known:
        raise GalleryError(f"{args.query}: neither a gallery item id nor an image file; give an id from the gallery "
                           "(image path relative to the catalogue) or a path to an image")
    res = g.search(query, request, k=args.k, filters=args.filter, exact=True if args.exact else None)
    if args.json:
        json.dump({"query": args.query, "request": request.to_strings(), "filters": args.filter, "method": res.method,
                   "exact": res.exact, "candidates": res.candidates, "results": [r.to_dict() for r in res.results]},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        what = " ".join(request.to_strings()) or "no manipulation"
        name = "the description" if args.query is None else args.query
        sys.stdout.write(f"{len(res.results)} results for {printable(name)} ({printable(what)}; {res.method}, "
                         f"{'exact' if res.exact else 'hnsw'}; {res.candidates} candidates)\n")
        for i, r in enumerate(res.results, 1):
            pred = ", ".join(f"{a}={v}" for a, (v, _) in r.predicted.items())
            md = " ".join(f"{k}={v}" for k, v in r.metadata.items())
            sys.stdout.write(f"{i:3d}. {r.distance:10.4f}  {printable(r.id)}  [{printable(pred)}]  {printable(md)}\n")
    if args.explain:
        from fashionsearchnet.gallery.explain import explain_image

        if qimage is None:
            row = g.row_of(args.query)
            qimage, qboxes = read_image(g.records[row]["path"]), g.boxes[row]
            qpred = g.result(row, 0.0).predicted
        labels = [f"{a}={qpred[a][0]}" for a in g.schema.names]
        title = f"{args.query}  {' '.join(request.to_strings()) or '(no manipulation)'}  {' '.join(args.filter)}"
        explain_image(qimage, qboxes, labels, [(r.path, r.id, r.distance) for r in res.results], title, args.explain)
        log.info("wrote %s", args.explain)
    return 0
