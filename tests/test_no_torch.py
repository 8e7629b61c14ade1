"""A kiosk installs numpy, OpenCV, ONNX Runtime and hnswlib only: runtime/, gallery/, data/, search/, evaluation/ and
the kiosk-side CLI commands must import (every submodule) with torch and onnx blocked."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.kiosk_block import KIOSK_BLOCK

KIOSK_PACKAGES = ["fashionsearchnet.search", "fashionsearchnet.runtime", "fashionsearchnet.gallery",
                  "fashionsearchnet.data", "fashionsearchnet.evaluation", "fashionsearchnet.app.server"]
KIOSK_COMMANDS = ["synth", "convert", "index", "search", "serve", "eval"]

CODE = KIOSK_BLOCK + textwrap.dedent("""
    import importlib, importlib.util, pkgutil
    done = []
    for pkg_name in {packages!r}:
        pkg = importlib.import_module(pkg_name)
        done.append(pkg_name)
        for m in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            importlib.import_module(m.name)
            done.append(m.name)
    for cmd in {commands!r}:
        name = "fashionsearchnet.app.cmd_" + cmd
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            done.append(name)
    importlib.import_module("fashionsearchnet.app.cli")
    leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    assert not leaked, leaked
    print(len(done))
""")


def test_kiosk_modules_import_without_torch():
    code = CODE.format(packages=KIOSK_PACKAGES, commands=KIOSK_COMMANDS)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) >= len(KIOSK_PACKAGES) + 3


def test_the_blocker_really_blocks():
    code = CODE.format(packages=["fashionsearchnet.data"], commands=[]) + "\nimport torch\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "blocked on a kiosk: torch" in r.stderr
