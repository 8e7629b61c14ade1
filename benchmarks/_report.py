"""What every benchmark script ends with: the command line, the machine, and OUT.json + OUT.md written atomically."""
from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from fashionsearchnet.fileio import atomic_write_text


def command() -> str:
    """The command line that ran this script, shell-quoted so that it can be pasted back (from the repo root:
    a benchmark run as ``python -m benchmarks.…`` is shown that way, not as the path of its file)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.startswith("benchmarks."):
        argv = [sys.executable, "-m", spec.name, *sys.argv[1:]]
    else:
        argv = [sys.executable, *sys.argv]
    return " ".join(shlex.quote(a) for a in argv)


def machine(extra: str = "") -> str:
    """CPU, logical cores, platform and 1-min load average, then ``extra`` (e.g. a library version) if given."""
    text = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
            f"load {os.getloadavg()[0]:.1f}")
    return f"{text}, {extra}" if extra else text


def write_report(dest: str | Path, result: dict[str, Any], md_lines: list[str], echo: bool = True) -> None:
    """Write ``dest``.json (``result``) and ``dest``.md (``md_lines``), each atomically; echo the markdown."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest.with_suffix(".json"), json.dumps(result, indent=2, default=float) + "\n")
    md = "\n".join(md_lines).rstrip("\n") + "\n"
    atomic_write_text(dest.with_suffix(".md"), md)
    if echo:
        sys.stdout.write(md)
