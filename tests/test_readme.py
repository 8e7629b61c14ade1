"""The README is accurate: its Python example runs, its commands exist, its set-up commands are the Makefile's."""
from __future__ import annotations

import re
from pathlib import Path

from fashionsearchnet.app.cli import COMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_fsn_command_in_the_readme_exists():
    used = set(re.findall(r"`fsn ([a-z]+)", README)) | set(re.findall(r"^fsn ([a-z]+)", README, re.M))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)
    assert set(COMMANDS) <= used  # and every command is documented


def test_setup_commands_are_make_targets():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "make demo" in README and "make test" in README
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_python_example_runs(kiosk_demo, capsys):
    built, _ = kiosk_demo
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    photo = next(Path(built.gallery).parent.rglob("*.jpg"))
    code = code.replace('"demo-out/gallery"', repr(str(built.gallery))).replace('"photo.jpg"', repr(str(photo)))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 6 and "color" in out[0]  # predicted attributes, then 5 results


# ---- README + docs/: commands and flags exist, links resolve ------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands(text: str):
    """(command, rest of the line) for every `fsn CMD ...` in backticks and every `fsn CMD` line of a code block."""
    for m in re.finditer(r"`fsn ([a-z]+)([^`]*)`", text):
        yield m.group(1), m.group(2)
    for block in re.findall(r"^```\n(.*?)^```", text, re.S | re.M):
        for m in re.finditer(r"^fsn ([a-z]+)(.*)$", block, re.M):
            yield m.group(1), m.group(2).split("#")[0]


def _options(cmd: str) -> set[str]:
    import argparse

    from fashionsearchnet.app.cli import build_parser

    sub = next(a for a in build_parser(only=cmd)._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[cmd]._actions for o in a.option_strings}


def test_every_documented_command_and_flag_exists():
    seen, bad = 0, []
    options: dict[str, set[str]] = {}
    for doc in DOCS:
        for cmd, rest in _commands(doc.read_text(encoding="utf-8")):
            seen += 1
            if cmd not in COMMANDS:
                bad.append(f"{doc.name}: fsn {cmd}")
                continue
            if cmd not in options:
                options[cmd] = _options(cmd)
            bad += [f"{doc.name}: fsn {cmd} {o}" for o in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", rest)
                    if o not in options[cmd]]
    assert seen > 30 and not bad, bad


def test_the_flag_check_catches_a_wrong_flag():
    assert "--json" in _options("eval") and "--jsn" not in _options("eval")
    assert list(_commands("`fsn eval RUN --jsn x` and\n```\nfsn search g q -k 5  # --not-a-flag\n```\n")) == [
        ("eval", " RUN --jsn x"), ("search", " g q -k 5  ")]


def test_every_relative_link_resolves():
    bad = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+://", target) and not (doc.parent / target).exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not bad, bad


def test_every_results_file_cited_in_the_docs_is_linked():
    """A results file named in README/docs is a link to it (so moving it breaks test_every_relative_link_resolves)."""
    results = {p.name for p in (ROOT / "benchmarks" / "results").glob("*.md")}
    bad = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for name in set(re.findall(r"`([A-Za-z0-9_]+\.md)`", text)) & results:
            if not re.search(r"\[`" + re.escape(name) + r"`\]\([^)]*" + re.escape(name) + r"\)", text):
                bad.append(f"{doc.name}: {name}")
    assert not bad, bad
