"""The direction of imports between the packages (issue 20): data and the search core at the bottom, evaluation on
the search core, training -> export, runtime <- gallery <- app, nothing imports app.

Every module's imports are read from its syntax tree (function-level imports included), so a lazy import that
would close a cycle at run time is caught too.
"""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NS = "fashionsearchnet"
CORE = "core"  # the namespace's own modules: errors, fileio, whole_numbers
API = "api"  # fashionsearchnet/__init__.py (the public API may gather names from every layer but app)

# package -> the packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "data": {CORE},
    "search": {CORE, "data"},
    "evaluation": {CORE, "data", "search", "runtime"},
    "runtime": {CORE, "data", "search"},
    "gallery": {CORE, "data", "search", "runtime"},
    "training": {CORE, "data", "search", "evaluation", "runtime"},
    "export": {CORE, "data", "search", "runtime", "training"},
    "app": {CORE, "data", "search", "evaluation", "runtime", "gallery", "training", "export", API},
    API: {CORE, "data", "search", "evaluation", "runtime", "gallery", "training", "export"},
}


def package_folders(root: Path) -> dict[str, Path]:
    """{top-level package (``data``, ``search``..., CORE for the namespace itself): folder} from pyproject."""
    cfg = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    out = {}
    for name, folder in cfg.items():
        parts = name.split(".")
        if parts == [NS]:
            out[CORE] = root / folder
        elif len(parts) == 2 and parts[0] == NS:
            out[parts[1]] = root / folder
    return out


def module_name(pkg: str, folder: Path, file: Path) -> str:
    rel = file.relative_to(folder).with_suffix("").parts
    base = [NS] if pkg == CORE else [NS, pkg]
    return ".".join(base + [p for p in rel if p != "__init__"])


def imports_of(file: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``file`` (``from X import name`` gives ``X.name``, which
    names a submodule when there is one; relative imports resolved against ``module``)."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    is_pkg = file.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def layer_of(name: str, packages: set[str]) -> str | None:
    """The package a module name belongs to (None outside the namespace)."""
    parts = name.split(".")
    if parts[0] != NS:
        return None
    if len(parts) == 1:
        return API
    if parts[1] in packages:
        return parts[1]
    if len(parts) == 2 and parts[1][:1].isupper():
        return API  # ``from fashionsearchnet import Gallery``: a public API name
    return CORE


def violations(root: Path, allowed: dict[str, set[str]] = ALLOWED) -> list[str]:
    """Every import that goes against ``allowed``, as ``file:line: a -> b (module)``."""
    folders = package_folders(root)
    packages = set(folders) - {CORE}
    bad = []
    for pkg, folder in folders.items():
        files = folder.glob("*.py") if pkg == CORE else folder.rglob("*.py")
        for file in sorted(files):
            module = module_name(pkg, folder, file)
            src = API if pkg == CORE and file.name == "__init__.py" else pkg
            for line, name in imports_of(file, module):
                dst = layer_of(name, packages)
                if dst is None or dst == src:
                    continue
                if dst not in allowed.get(src, set()):
                    bad.append(f"{file.relative_to(root)}:{line}: {src} -> {dst} ({name})")
    return bad


def test_every_import_goes_down_the_layers():
    assert violations(ROOT) == []


def test_the_allowed_layers_have_no_cycle_and_nothing_imports_app():
    assert all("app" not in deps for pkg, deps in ALLOWED.items())
    order, todo = [], dict(ALLOWED)
    while todo:  # Kahn: peel the packages whose dependencies are all placed
        ready = [p for p, deps in todo.items() if deps <= set(order)]
        assert ready, f"cycle among {sorted(todo)}"
        order += ready
        for p in ready:
            del todo[p]
    assert order.index("search") < order.index("evaluation") < order.index("training") < order.index("export")
    assert order.index("runtime") < order.index("gallery") < order.index("app")


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools.package-dir]\n"fashionsearchnet" = "fashionsearchnet"\n'
        + "".join(f'"fashionsearchnet.{p}" = "{p}"\n' for p in ("data", "search", "evaluation", "gallery", "app")))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.mark.parametrize("path, text, expect", [
    # a function-level import from the gallery into the evaluation (the cycle issue 20 removed)
    ("gallery/bad.py", "def f():\n    from fashionsearchnet.evaluation import protocol\n",
     "gallery/bad.py:2: gallery -> evaluation (fashionsearchnet.evaluation.protocol)"),
    # the search core reaching up into the gallery
    ("search/bad.py", "import fashionsearchnet.gallery.gallery as g\n",
     "search/bad.py:1: search -> gallery (fashionsearchnet.gallery.gallery)"),
    # a relative import is resolved before it is judged
    ("data/bad.py", "from ..search import request\n", "data/bad.py:1: data -> search (fashionsearchnet.search.request)"),
    # nothing imports the app, not even through the namespace's own modules
    ("fashionsearchnet/errors.py", "from fashionsearchnet.app import cli\n",
     "fashionsearchnet/errors.py:1: core -> app (fashionsearchnet.app.cli)"),
    # a package module importing the public API would import every layer
    ("search/bad.py", "from fashionsearchnet import Gallery\n",
     "search/bad.py:1: search -> api (fashionsearchnet.Gallery)"),
])
def test_the_checker_finds_a_planted_violation(tmp_path, path, text, expect):
    root = _tree(tmp_path, {"gallery/ok.py": "from fashionsearchnet.search.exact import ExactSearcher\n",
                            "evaluation/ok.py": "from fashionsearchnet.search import request\n",
                            "search/__init__.py": "", "fashionsearchnet/errors.py": "", path: text})
    assert violations(root) == [expect]


def test_the_checker_passes_a_clean_synthetic_tree(tmp_path):
    root = _tree(tmp_path, {"gallery/ok.py": "def f():\n    from fashionsearchnet.search.exact import ExactSearcher\n",
                            "app/ok.py": "from fashionsearchnet.gallery import ok\nimport numpy\n",
                            "search/x.py": "from . import y\nfrom fashionsearchnet.errors import UsageError\n"})
    assert violations(root) == []
