"""The kiosk-side test folders run with torch blocked (tests/conftest.py + tests/support/torch_block.py): this
proves it for tests/data."""
from tests.support.torch_block import assert_torch_blocked


def test_torch_and_the_torch_side_packages_cannot_be_imported_here():
    assert_torch_blocked()
