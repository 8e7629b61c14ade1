"""argparse value types shared by several ``fsn`` commands."""
from __future__ import annotations

import argparse


def stage_epochs(text: str) -> tuple[int, int, int]:
    """``--epochs``: one number for all three training stages, or three (stage 1,2,3), none negative."""
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give one number or three (stage 1,2,3) like 10,10,5") from None
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3 or min(parts) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give one number or three non-negative numbers like 10,10,5")
    return tuple(parts)  # type: ignore[return-value]
