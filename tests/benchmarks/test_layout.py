"""benchmarks/ as a package: every script is a module with a working --help and never edits sys.path; every study
has its README and results; every benchmarks/ path that the docs name exists."""
from __future__ import annotations

import glob
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.rglob("*.py") if not p.name.startswith("_"))
MODULES = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in SCRIPTS]
DOCS = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md")), *sorted(BENCH.rglob("README.md"))]


def test_scripts_are_in_perf_or_a_study_folder():
    assert MODULES and all(m.startswith(("benchmarks.perf.", "benchmarks.experiments.")) for m in MODULES), MODULES
    assert not list((BENCH / "results").glob("*")) if (BENCH / "results").exists() else True


@pytest.mark.parametrize("module", MODULES)
def test_every_script_is_a_module_with_help(module, capsys):
    mod = importlib.import_module(module)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage:")
    assert "sys.path" not in Path(mod.__file__).read_text(), f"{module} edits sys.path: run it with python -m"


def test_every_study_has_a_readme_a_script_and_results():
    studies = [p for p in (BENCH / "experiments").iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert len(studies) >= 8
    for s in studies:
        readme = (s / "README.md").read_text()
        assert "**Question.**" in readme and "**Answer.**" in readme, s
        assert list(s.glob("*.py")) and list((s / "results").glob("*.md")), s
    assert (BENCH / "perf" / "README.md").exists() and list((BENCH / "perf" / "results").glob("*.md"))


def _referenced(text: str) -> set[str]:
    paths = set(re.findall(r"benchmarks/[\w./*{},-]*[\w}]", text))
    mods = {m.replace(".", "/") + ".py" for m in re.findall(r"-m (benchmarks\.[\w.]+)", text)}
    return paths | mods


def _expand(ref: str) -> list[str]:
    m = re.search(r"\{([^}]*)\}", ref)
    if not m:
        return [ref]
    return [x for alt in m.group(1).split(",") for x in _expand(ref[:m.start()] + alt + ref[m.end():])]


def test_every_benchmarks_path_in_the_docs_exists():
    # benchmarks/README.md's map names the old paths on purpose (its left column)
    old = {x for ln in (BENCH / "README.md").read_text().splitlines() if ln.startswith("| `benchmarks/")
           for x in _expand(ln.split("`")[1])} | {"benchmarks/results"}
    missing = []
    for doc in DOCS:
        base = doc.parent if doc.is_relative_to(BENCH) else ROOT
        for ref in _referenced(doc.read_text(encoding="utf-8")):
            for path in _expand(ref):
                if path not in old and not (glob.glob(str(ROOT / path)) or glob.glob(str(base / path))):
                    missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, missing
