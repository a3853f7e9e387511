"""Value filters evaluated against one element of a multi-valued attribute (the PATCH engine's use)."""

from __future__ import annotations

import pytest

from syncd.service.errors import InvalidFilter
from syncd.service.filters import matches, parse_filter, parse_path
from syncd.service.schema import GROUP, USER, Attr

EMAILS = USER.core.attr("emails")
MEMBERS = GROUP.core.attr("members")
ADDRESSES = USER.core.attr("addresses")
assert EMAILS and MEMBERS and ADDRESSES

WORK = {"value": "Bjensen@Example.com", "type": "work", "primary": True, "display": "B J"}
HOME = {"value": "babs@jensen.org", "type": "home"}
ENTRA = {"value": "x@contoso.com", "type": "Work", "primary": "True"}
ENTRA_FALSE = {"value": "y@contoso.com", "type": "other", "primary": "False"}
ODD_KEYS = {"VALUE": "k@x.org", "Type": "WORK", "PRIMARY": "true"}


@pytest.mark.parametrize(
    ("flt", "item", "expected"),
    [
        ('type eq "work"', WORK, True),
        ('type eq "WORK"', WORK, True),
        ('TYPE EQ "work"', ENTRA, True),
        ('type eq "work"', HOME, False),
        ('type eq "work"', ODD_KEYS, True),
        ('value eq "bjensen@example.com"', WORK, True),
        ('value co "EXAMPLE"', WORK, True),
        ('value sw "bjen"', WORK, True),
        ('value ew ".COM"', WORK, True),
        ('value ew ".org"', WORK, False),
        ('value gt "a"', WORK, True),
        ('value lt "a"', WORK, False),
        ('value ge "bjensen@example.com"', WORK, True),
        ('value le "BJENSEN@EXAMPLE.COM"', WORK, True),
        ("primary eq true", WORK, True),
        ("primary eq true", HOME, False),
        ("primary eq false", HOME, False),  # absent is not false ...
        ("primary ne true", HOME, True),  # ... but it is `ne` anything
        ("primary eq true", ENTRA, True),  # Entra's "True" string
        ("primary eq false", ENTRA_FALSE, True),
        ('primary eq "true"', ODD_KEYS, True),
        ("primary pr", WORK, True),
        ("primary pr", HOME, False),
        ("display pr", WORK, True),
        ("display pr", {"display": ""}, False),
        ("type eq null", {"value": "a"}, True),
        ("type eq null", WORK, False),
        ("type ne null", WORK, True),
        ('type ne "work"', {"value": "a"}, True),
        ('type ne "work"', WORK, False),
        ('type eq "work" and value co "@example.com"', WORK, True),
        ('type eq "work" and value co "@example.com"', HOME, False),
        ('type eq "home" or primary eq true', WORK, True),
        ('not (type eq "work")', HOME, True),
        ('not (type eq "work")', WORK, False),
        ('value eq "a"', "a", True),  # a bare scalar reads as {"value": ...}
        ('value co "é"', {"value": "CAFÉ"}, True),
        ('value eq "strasse"', {"value": "Straße"}, True),  # casefold, not lower
        ('value eq "5"', {"value": 5}, False),  # a number is not the string "5"
    ],
)
def test_email_value_filters(flt, item, expected):
    assert matches(parse_filter(flt), item, EMAILS) is expected


@pytest.mark.parametrize(
    ("flt", "item", "expected"),
    [
        ('value eq "2819c223"', {"value": "2819c223", "display": "Babs"}, True),
        ('value eq "2819C223"', {"value": "2819c223"}, not MEMBERS.child("value").case_exact),  # type: ignore[union-attr]
        ('value eq "other"', {"value": "2819c223"}, False),
        ('type eq "user"', {"value": "1", "type": "User"}, True),
    ],
)
def test_member_filters_follow_the_schema_case_rules(flt, item, expected):
    assert matches(parse_filter(flt), item, MEMBERS) is expected


def test_case_exact_sub_attributes_compare_exactly():
    attr = Attr("things", "complex", multi=True, sub=(Attr("value", case_exact=True), Attr("type")))
    assert matches(parse_filter('value eq "AbC"'), {"value": "AbC"}, attr)
    assert not matches(parse_filter('value eq "abc"'), {"value": "AbC"}, attr)
    assert not matches(parse_filter('value co "B"'), {"value": "AbC"}, attr)
    assert matches(parse_filter('type eq "x"'), {"type": "X"}, attr)


def test_number_and_datetime_sub_attributes():
    attr = Attr(
        "x", "complex", multi=True, sub=(Attr("n", "integer"), Attr("at", "dateTime"), Attr("d", "decimal"))
    )
    item = {"n": 5, "at": "2024-05-01T10:00:00+02:00", "d": 1.5}
    assert matches(parse_filter("n gt 4 and n le 5 and d lt 2"), item, attr)
    assert matches(parse_filter('at eq "2024-05-01T08:00:00Z"'), item, attr)
    assert matches(parse_filter('at gt "2024-05-01T07:59:59"'), item, attr)  # naive = UTC
    assert not matches(parse_filter('at lt "2024-01-01T00:00:00Z"'), item, attr)
    assert not matches(parse_filter('at gt "2000-01-01T00:00:00Z"'), {"at": "garbage"}, attr)


def test_patch_path_filters_select_elements():
    path = parse_path('emails[type eq "work"].value')
    assert path.filter is not None
    emails = [WORK, HOME, ENTRA]
    assert [e["value"] for e in emails if matches(path.filter, e, EMAILS)] == [
        "Bjensen@Example.com",
        "x@contoso.com",
    ]
    path = parse_path('addresses[type eq "work" and postalCode sw "9"]')
    assert path.filter is not None
    assert matches(path.filter, {"type": "work", "postalCode": "91608"}, ADDRESSES)


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ('nope eq "x"', "'emails.nope' is not filterable"),
        ("nope pr", "'emails.nope' is not filterable"),
        ('value eq "x" or nope pr', "'emails.nope' is not filterable"),
        ("primary gt true", "boolean: only eq, ne and pr"),
        ('primary co "t"', "boolean"),
        ('primary eq "yes"', "not true or false"),
        ("primary eq 1", "not true or false"),
        ("value eq 5", "compare it with a string"),
        ("value eq true", "compare it with a string"),
        ("value co null", "null takes only eq and ne"),
        ("value gt null", "null takes only eq and ne"),
    ],
)
def test_ill_formed_value_filters_raise_even_when_the_item_would_not_match(flt, message):
    with pytest.raises(InvalidFilter, match=message):
        matches(parse_filter(flt), {}, EMAILS)


def test_a_nested_value_path_is_refused():
    from syncd.service.filters import AttrPath, Present, ValuePath

    nested = ValuePath(AttrPath(None, "emails"), Present(AttrPath(None, "value")))
    with pytest.raises(InvalidFilter, match="cannot contain another"):
        matches(nested, WORK, EMAILS)


def test_datetime_operands_must_be_iso_strings():
    attr = Attr("x", "complex", multi=True, sub=(Attr("at", "dateTime"),))
    with pytest.raises(InvalidFilter, match="ISO 8601"):
        matches(parse_filter('at gt "yesterday"'), {}, attr)
    with pytest.raises(InvalidFilter, match="strings only"):
        matches(parse_filter('at co "2020"'), {}, attr)
