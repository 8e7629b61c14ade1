"""Shared ``--epochs`` parsing: ``fsn train`` and ``fsn demo`` accept one number or three, and say how to fix a bad value."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from fashionsearchnet.app.argtypes import stage_epochs
from fashionsearchnet.app.cli import build_parser


def test_one_number_is_every_stage_three_are_per_stage():
    assert stage_epochs("4") == (4, 4, 4)
    assert stage_epochs("8,4,10") == (8, 4, 10)
    for bad in ("1,2", "1,2,3,4", "-1", "a", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError, match="give one number or three"):
            stage_epochs(bad)


@pytest.mark.parametrize("command,extra", [("train", ["data", "--out", "run"]), ("demo", [])])
def test_train_and_demo_parse_epochs_alike(command, extra):
    args = build_parser().parse_args([command, *extra, "--epochs", "3"])
    assert args.epochs == (3, 3, 3)
    args = build_parser().parse_args([command, *extra, "--epochs", "6,2,4"])
    assert args.epochs == (6, 2, 4)


def test_bad_epochs_is_a_one_line_error_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "demo", "--out", str(tmp_path / "d"),
                        "--epochs", "6,2"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "'6,2': give one number or three" in r.stderr


@pytest.mark.parametrize("argv, needle", [
    (["bench", "B", "--json", "b.json", "--warmup", "-1"], "--warmup -1: give 0 or more"),
    (["bench", "B", "--json", "b.json", "--threads", "-2"], "--threads -2: give 0"),
    (["bench", "B", "--json", "b.json", "--image-size", "0"], "--image-size 0: give at least 8"),
    (["bench", "B", "--json", "b.json", "--batches", "16,x"], "--batches '16,x': give comma-separated"),
    (["serve", "G", "--threads", "-1"], "--threads -1: give 0"),
    (["serve", "G", "--max-upload-mb", "nan"], "--max-upload-mb > 0"),
])
def test_out_of_range_numbers_are_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, needle):
    from fashionsearchnet.app.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "G").mkdir()
    (tmp_path / "G" / "CURRENT").write_text("{}")  # serve checks the folder first; B need not exist: checked later
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_library_checks_behind_the_flags():
    from fashionsearchnet.errors import UsageError
    from fashionsearchnet.runtime.backends.ort import session_options
    from fashionsearchnet.training.config import TrainConfig

    with pytest.raises(UsageError, match="--threads -1"):
        session_options(threads=-1)
    assert session_options(threads=0).intra_op_num_threads == 0
    with pytest.raises(UsageError, match="--checkpoint-every"):
        TrainConfig(checkpoint_every_s=-1.0)
    TrainConfig(checkpoint_every_s=0.0)  # every step: allowed
