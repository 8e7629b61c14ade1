"""benchmarks/experiments/methods/heldout_eval.py caches each run's eval JSON; two runs in folders of the same name (e.g. two seeds'
``run-synth-edge``) must not share it, and a retrained run must be evaluated anew."""
from __future__ import annotations

from benchmarks.experiments.methods.heldout_eval import run_key


def test_run_key_tells_runs_of_the_same_folder_name_apart(tmp_path):
    key = run_key
    a, b = tmp_path / "seed0" / "run-synth-edge", tmp_path / "seed1" / "run-synth-edge"
    for r in (a, b):
        r.mkdir(parents=True)
        (r / "run.json").write_text('{"seed": 0}')
    assert key(a) != key(b)
    assert key(a) == key(str(a)) == key(a / ".." / "run-synth-edge")
    before = key(a)
    (a / "run.json").write_text('{"seed": 0, "retrained": true}')
    assert key(a) != before
