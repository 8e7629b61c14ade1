"""The kiosk-side test folders (tests/data, search, runtime, gallery) run with torch blocked
(tests/conftest.py + tests/support/torch_block.py): this proves it for tests/gallery, whose indexing tests run
the checked-in tiny bundle, not an export made with torch."""
from __future__ import annotations

from tests.support.torch_block import assert_torch_blocked


def test_torch_and_the_torch_side_packages_cannot_be_imported_here():
    assert_torch_blocked()
