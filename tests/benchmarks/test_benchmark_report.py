"""benchmarks/_report.py: the command line, the machine line and the atomic OUT.json + OUT.md pair."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from benchmarks import _report as report


def test_write_report_writes_json_and_markdown_and_echoes(tmp_path, capsys):
    dest = tmp_path / "missing" / "deeper" / "bench"
    result = {"command": "python x.py", "p50_ms": np.float32(1.5), "rows": [{"n": 3}], "name": "ümlaut"}
    md = ["# Title", "", "| a | b |", "|---|---|", "| 1 | 2 |"]
    report.write_report(dest, result, md)

    assert json.loads(dest.with_suffix(".json").read_text(encoding="utf-8")) == {
        "command": "python x.py", "p50_ms": 1.5, "rows": [{"n": 3}], "name": "ümlaut"}
    assert dest.with_suffix(".json").read_text(encoding="utf-8").endswith("}\n")
    assert dest.with_suffix(".md").read_text(encoding="utf-8") == "\n".join(md) + "\n"
    assert capsys.readouterr().out == "\n".join(md) + "\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["bench.json", "bench.md"]  # no *.tmp left behind


def test_write_report_keeps_one_trailing_newline_and_can_stay_quiet(tmp_path, capsys):
    dest = str(tmp_path / "bench")
    report.write_report(dest, {"a": 1}, ["# T", "text", ""], echo=False)
    assert Path(dest).with_suffix(".md").read_text(encoding="utf-8") == "# T\ntext\n"
    assert capsys.readouterr().out == ""
    report.write_report(dest, {"a": 2}, ["# T2"], echo=False)  # overwrites the pair in place
    assert json.loads(Path(dest).with_suffix(".json").read_text(encoding="utf-8")) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.md"]


def test_both_files_go_through_the_atomic_writer(tmp_path, monkeypatch):
    written = []
    real = report.atomic_write_text

    def recording(path, text):
        written.append(Path(path).name)
        real(path, text)

    monkeypatch.setattr(report, "atomic_write_text", recording)
    report.write_report(tmp_path / "bench", {"a": 1}, ["# T"], echo=False)
    assert written == ["bench.json", "bench.md"]


def test_command_and_machine():
    assert sys.argv[0] in report.command()
    assert report.command().startswith(shlex.quote(sys.executable) + " ")
    m = report.machine("torch x")
    assert m.endswith(", torch x")
    assert " CPUs, " in m and ", load " in m
    assert not report.machine().endswith(", ")


def test_a_benchmark_run_as_a_module_is_shown_with_dash_m(monkeypatch):
    import types
    from importlib.machinery import ModuleSpec

    main = types.ModuleType("__main__")
    main.__spec__ = ModuleSpec("benchmarks.perf.bench_synth", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/abs/benchmarks/perf/bench_synth.py", "--count", "5", "--out", "a b"])
    assert report.command() == f"{shlex.quote(sys.executable)} -m benchmarks.perf.bench_synth --count 5 --out 'a b'"
