"""Fixtures shared by the search-core tests: the gallery fixtures' schema and random parameters (per module)."""
import pytest

from tests.support.gallery_fixtures import random_params, schema


@pytest.fixture(scope="module")
def sch():
    return schema()


@pytest.fixture(scope="module")
def params(sch):
    return random_params(sch)
