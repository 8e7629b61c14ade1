"""The one request parser (search/request.py): its structured error names the entry at fault and the valid
choices, for the CLI (``--set``) and the HTTP service (``sets``) alike."""
from __future__ import annotations

import pytest

from fashionsearchnet.errors import RequestError, SchemaError, UsageError
from fashionsearchnet.search.request import Request, split_entry

from tests.support.gallery_fixtures import schema

ATTRS = ["category", "collar", "sleeve", "color", "pattern"]


@pytest.fixture
def sch():
    return schema()


@pytest.mark.parametrize("sets, entry, valid, needle", [
    (["color"], "color", {"attributes": ATTRS}, "--set 'color': expected attr=value or region:attr=value"),
    (["collar=round", "colour=red"], "colour=red", {"attributes": ATTRS}, "unknown attribute 'colour'"),
    (["color=purple"], "color=purple", {"values": ["red", "blue", "green", "white"]}, "unknown value 'purple'"),
    (["hat:color=red"], "hat:color=red", {"regions": ["collar", "sleeve", "torso"]}, "unknown region 'hat'"),
    (["collar:pattern=plain"], "collar:pattern=plain", {"attributes": ["color"]}, "cannot be asked for region"),
    (["sleeve:color=pink"], "sleeve:color=pink", {"values": ["red", "blue", "green", "white"]}, "'pink'"),
    (["color=red", "color=blue"], "color=blue", None, "asked twice"),
    (["sleeve:color=red", " sleeve : color = blue"], "sleeve:color=blue", None, "asked twice"),
])
def test_the_error_names_the_entry_and_the_valid_choices(sch, sets, entry, valid, needle):
    with pytest.raises(RequestError, match=needle) as e:
        Request.parse(sets, sch)
    assert e.value.entry == entry and e.value.valid == valid
    assert "\n" not in str(e.value)
    # the CLI and the service catch it as the errors they always caught
    assert isinstance(e.value, SchemaError) and isinstance(e.value, UsageError)


def test_the_field_is_named_for_where_the_request_came_from(sch):
    with pytest.raises(RequestError, match=r"^sets 'hat:color=red': unknown region"):
        Request.parse(["hat:color=red"], sch, source="sets")
    with pytest.raises(RequestError, match=r"^--set 'color=purple': "):
        Request.parse(["color=purple"], sch)


def test_a_request_built_in_code_is_checked_the_same_way(sch):
    with pytest.raises(RequestError) as e:
        Request(region=(("sleeve", "fit", "slim"),)).validate(sch)
    assert e.value.entry == "sleeve:fit=slim" and e.value.valid == {"attributes": ["color", "pattern"]}


def test_parse_splits_and_round_trips(sch):
    assert split_entry(" sleeve : color = green ") == ("sleeve", "color", "green")
    assert split_entry("color=a=b") == (None, "color", "a=b")  # the value is everything after the first '='
    r = Request.parse(["collar=hood", "sleeve:color=green", "color=red", "collar=hood"], sch)
    assert r.set == (("collar", "hood"), ("color", "red"), ("collar", "hood"))
    assert r.region == (("sleeve", "color", "green"),)
    assert r.to_strings() == ["collar=hood", "color=red", "collar=hood", "sleeve:color=green"]
    assert Request.parse(r.to_strings(), sch) == r
    # the same attribute image-level and per region is two entries, not one asked twice
    assert Request.parse(["color=red", "sleeve:color=blue"], sch).region == (("sleeve", "color", "blue"),)
