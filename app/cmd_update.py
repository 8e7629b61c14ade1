"""fsn update GALLERY [--add DATA] [--remove ID]... [--meta ID KEY=VALUE]...: change a gallery's catalogue without
a rebuild. --add extracts the images of DATA (dataset folder or image folder) that the gallery does not hold yet
with the gallery's bundle; --remove marks items deleted; --meta sets (KEY=) or clears (KEY=) a metadata column.
Everything is checked first, then applied and saved atomically once (a new generation).
--keep KEY=VALUE... --out STORE: cut a store gallery (the matching items, stored features, same bundle) into a new
folder; the source gallery is not changed."""
from __future__ import annotations

import argparse
import logging

from fashionsearchnet.app import backend_options

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gallery", help="gallery folder written by 'fsn index'")
    p.add_argument("--add", metavar="DATA", help="dataset folder or folder of images; new ids are extracted and added")
    p.add_argument("--remove", action="append", default=[], metavar="ID", help="remove an item by id (repeatable)")
    p.add_argument("--meta", action="append", default=[], nargs=2, metavar=("ID", "KEY=VALUE"),
                   help="set a metadata column of an item; KEY= clears it (repeatable)")
    p.add_argument("--keep", action="append", default=[], metavar="KEY=VALUE",
                   help="with --out: copy the items whose metadata column (or item_id, or predicted attribute) has "
                        "this value into a new gallery, e.g. --keep store=12 (repeatable: all must match)")
    p.add_argument("--out", help="new gallery folder for --keep (a per-store gallery, no re-extraction)")
    p.add_argument("--bundle", help="bundle for --add (default: the one the gallery was built with)")
    p.add_argument("--backend", default="auto", choices=("auto", "ort", "trt", "openvino"), help="feature extraction backend")
    backend_options.add_arguments(p)
    p.add_argument("--batch-size", type=int, default=32, help="images per extraction batch (default 32)")


def parse_meta(pairs: list[list[str]]) -> list[tuple[str, dict[str, str]]]:
    """[[ID, "KEY=VALUE"], ...] -> [(ID, {KEY: VALUE}), ...]; a KEY= with no value clears that column."""
    from fashionsearchnet.errors import UsageError

    out = []
    for key, kv in pairs:
        if "=" not in kv or not kv.split("=", 1)[0].strip():
            raise UsageError(f"--meta {key} {kv!r}: expected KEY=VALUE (KEY= clears the column)")
        k, v = kv.split("=", 1)
        out.append((key, {k.strip(): v.strip()}))
    return out


def run(args: argparse.Namespace) -> int:
    from fashionsearchnet.errors import GalleryError, UsageError
    from fashionsearchnet.gallery.gallery import Gallery

    if args.keep or args.out:
        return _cut(args)
    if not (args.add or args.remove or args.meta):
        raise UsageError("nothing to do: give --add DATA, --remove ID or --meta ID KEY=VALUE")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: must be >= 1")
    meta = parse_meta(args.meta)
    g = Gallery.open(args.gallery)
    for key in dict.fromkeys(args.remove):  # every id must name an item before anything changes
        g.row_of(key)
    removed = set(dict.fromkeys(args.remove))
    added: list[str] = []
    if args.add:
        from fashionsearchnet.app.progress import bar
        from fashionsearchnet.gallery.indexer import add_catalogue, list_catalogue, new_records
        from fashionsearchnet.runtime.bundle import Bundle

        new_ids = {r["id"] for r in new_records(g, list_catalogue(args.add))}
        for key, _ in meta:
            if key not in new_ids:
                g.row_of(key)
        bundle = Bundle.open(args.bundle or g.bundle.path)
        state: dict = {}

        def on_total(total: int, done: int) -> None:
            state["bar"] = bar(total, "extracting", "img")
            state["advance"] = state["bar"].__enter__()
            state["advance"](done)

        try:
            added = add_catalogue(g, bundle, args.add, backend=backend_options.backend_choice(args),
                                  batch_size=args.batch_size,
                                  progress=lambda n: state["advance"](n), on_total=on_total)
        finally:
            if "bar" in state:
                state["bar"].__exit__(None, None, None)
    else:
        for key, _ in meta:
            g.row_of(key)
    for key, _ in meta:
        if key in removed:
            raise GalleryError(f"--meta {key}: the item is removed by --remove {key} in the same command; drop one")
    if removed:
        g.remove(list(removed))
    for key, md in meta:
        g.update_metadata(key, md)
    gen = g.save()
    if args.add:
        from fashionsearchnet.gallery.indexer import finish_add

        finish_add(g)
    log.info("%s: generation %d: %d added, %d removed, %d metadata updates; %d items", args.gallery, gen,
             len(added), len(removed), len(meta), len(g))
    return 0


def _cut(args: argparse.Namespace) -> int:
    from fashionsearchnet.errors import UsageError
    from fashionsearchnet.gallery.gallery import Gallery
    from fashionsearchnet.gallery.subset import cut_gallery

    if not (args.keep and args.out):
        raise UsageError("--keep KEY=VALUE and --out STORE_GALLERY go together (cut a store gallery)")
    if args.add or args.remove or args.meta:
        raise UsageError("--keep/--out make a new gallery; run --add/--remove/--meta as a separate command")
    g = cut_gallery(Gallery.open(args.gallery), args.keep, args.out)
    log.info("%s: %d items (%s) from %s, generation %d", args.out, len(g), " ".join(args.keep), args.gallery,
             g.generation)
    return 0
