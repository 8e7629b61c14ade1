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
