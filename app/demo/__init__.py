"""``fsn demo``: synthesise a catalogue, train briefly, export, index, run example searches and write a report.

:mod:`.pipeline` runs (or reuses) the steps, :mod:`.examples` picks and runs the example searches, :mod:`.report`
writes ``report.json`` and renders ``report.html`` from a template. Needs the ``[train]`` extra (torch, jinja2).
"""
from fashionsearchnet.app.demo.pipeline import DemoConfig, DemoResult, build

__all__ = ["DemoConfig", "DemoResult", "build"]
