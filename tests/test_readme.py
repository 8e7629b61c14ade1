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
