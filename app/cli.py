"""The ``fsn`` command line: one module per sub-command (``cmd_<name>.py``), imported only when used,
so ``fsn search`` on a kiosk never imports torch."""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from fashionsearchnet.errors import FSNError, one_line

COMMANDS = {
    "synth": "write a synthetic catalogue with region-level truth",
    "convert": "convert a DeepFashion or fashion-product folder to the dataset format",
    "train": "train FashionSearchNet and baselines on a dataset folder",
    "eval": "evaluate trained methods / a gallery on the search protocols",
    "calibrate": "choose ROI thresholds, region prototypes and fsn_region terms of a finished fsn run",
    "export": "export a trained run to an ONNX model bundle",
    "engines": "build TensorRT engines for a bundle",
    "bench": "benchmark feature extraction per backend",
    "index": "index a catalogue into a gallery",
    "search": "search a gallery by image or item id, with manipulations",
    "update": "add, remove or re-tag gallery items without a rebuild",
    "serve": "run the local HTTP service and kiosk page",
    "demo": "synthesise, train, export, index and search in one go",
}


def _module(name: str):
    return importlib.import_module(f"fashionsearchnet.app.cmd_{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsn", description="FashionSearchNet Edge: attribute-manipulable fashion search.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            try:
                _module(name).add_arguments(p)
            except ModuleNotFoundError as e:
                if e.name and e.name.endswith(f"cmd_{name}"):
                    p.set_defaults(_missing=name)
                else:
                    raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        print(f"fsn: error: '{args.command}' is not available in this version", file=sys.stderr)
        return 2
    try:
        return int(_module(args.command).run(args) or 0)
    except FSNError as e:
        print(f"fsn {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"fsn {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the file system refused: a path that cannot be written or read, a full disk
        where = f"{e.filename}: " if e.filename is not None else ""
        fix = ("free some space on that disk (or pick another output folder) and rerun; finished work is kept"
               if e.errno == errno.ENOSPC else
               "check that the path exists and that you may write there, or pick another path")
        print(f"fsn {args.command}: error: {where}{e.strerror or type(e).__name__}; {fix}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        extra = {"torch": "train", "onnx": "train", "tensorrt": "gpu", "fastapi": "serve", "uvicorn": "serve"}.get(
            (e.name or "").split(".")[0]
        )
        if extra is None:
            raise
        print(
            f"fsn {args.command}: error: needs the '{e.name}' package; install the [{extra}] extra: "
            f"pip install -e '.[{extra}]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
