"""Progress bars for the CLI. Library code takes an optional ``progress(n)`` callback; only the CLI draws bars."""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


@contextlib.contextmanager
def bar(total: int | None, desc: str, unit: str = "it") -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback drawing a tqdm bar on stderr (plain when not a terminal)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a base dependency
        yield lambda n=1: None
        return
    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
              disable=None, mininterval=0.5) as t:
        yield lambda n=1: t.update(n)
