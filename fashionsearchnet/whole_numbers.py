"""Reading whole numbers that users type (CLI flags, JSON fields, Python arguments)."""
from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np

_DIGITS = re.compile(r"\s*[+-]?\d+\s*")


def whole_number(value: Any, *, strings: bool = False) -> int | None:
    """``value`` as an int when it is a whole number, else None.

    Accepted: an integer (Python or NumPy, not a bool), a finite real with no fractional part (``2.0``), and
    with ``strings`` a string of digits with an optional sign (``" 3"``, ``"-1"``). Refused (None): bools, NaN,
    infinities, ``2.5``, ``"2.5"``, ``"--3"``, None and anything else, so that callers can raise their own
    one-line error instead of a ValueError or OverflowError from ``int()``.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return int(f) if math.isfinite(f) and f.is_integer() else None
    if strings and isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None
