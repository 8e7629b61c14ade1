"""One reading of "a whole number" for k, --threads and --max-queries; NaN and infinity are refused with the
caller's one-line error, not a ValueError/OverflowError from int()."""
from __future__ import annotations

import numpy as np
import pytest

from fashionsearchnet.errors import UsageError
from fashionsearchnet.whole_numbers import whole_number


@pytest.mark.parametrize("value, expected", [
    (3, 3), (-2, -2), (0, 0), (2.0, 2), (np.int64(7), 7), (np.float32(4.0), 4),
    (True, None), (np.bool_(True), None), (2.5, None), (float("nan"), None), (float("inf"), None),
    (-float("inf"), None), ("3", None), (None, None), ([3], None),
])
def test_whole_number_without_strings(value, expected):
    assert whole_number(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("3", 3), (" +4 ", 4), ("-1", -1), ("2.5", None), ("--3", None), ("", None), ("1e3", None), ("nan", None),
])
def test_whole_number_digit_strings(value, expected):
    assert whole_number(value, strings=True) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.5, True])
def test_library_checks_refuse_non_whole_numbers_with_a_usage_error(bad):
    from fashionsearchnet.app.service_api import check_k as request_k
    from fashionsearchnet.search.exact import check_k
    from fashionsearchnet.runtime.backends.ort import check_threads

    with pytest.raises(UsageError, match="k = "):
        check_k(bad, 10)
    with pytest.raises(UsageError, match="--threads"):
        check_threads(bad)
    with pytest.raises(UsageError, match="k: "):
        request_k(bad, 10)


def test_library_checks_accept_numpy_and_whole_floats():
    from fashionsearchnet.search.exact import check_k
    from fashionsearchnet.runtime.backends.ort import check_threads

    assert check_k(np.int64(5), 10) == 5 and check_k(5.0, 10) == 5
    check_threads(np.int32(2))
    check_threads(None)
