"""The SCIM filter and PATCH path parsers: the RFC 7644 grammar, and refusal of everything else."""

from __future__ import annotations

import pytest

from syncd.service.errors import InvalidFilter, InvalidPath
from syncd.service.filters import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse_filter,
    parse_path,
)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def P(attr: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, attr, sub)


def eq(attr: str, value: object, sub: str | None = None) -> Compare:
    return Compare(P(attr, sub), "eq", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title])
def test_every_comparison_operator_parses_in_any_case(op, spelling):
    assert parse_filter(f'userName {spelling(op)} "x"') == Compare(P("userName"), op, "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title pr", Present(P("title"))),
        ("title PR", Present(P("title"))),
        ('USERNAME eq "Bjensen"', Compare(P("USERNAME"), "eq", "Bjensen")),
        ('name.givenName sw "Ba"', Compare(P("name", "givenName"), "sw", "Ba")),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            Compare(P("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
        ),
        ('emails.value co "@example.com"', Compare(P("emails", "value"), "co", "@example.com")),
        (f'{CORE}:userName eq "a"', Compare(P("userName", urn=CORE), "eq", "a")),
        (f'{CORE}:name.familyName eq "J"', Compare(P("name", "familyName", CORE), "eq", "J")),
        (f'{ENT}:employeeNumber eq "7"', Compare(P("employeeNumber", urn=ENT), "eq", "7")),
        (f'{ENT}:manager.value eq "u2"', Compare(P("manager", "value", ENT), "eq", "u2")),
        ('members[value eq "id"]', ValuePath(P("members"), eq("value", "id"))),
        ("members[$ref pr]", ValuePath(P("members"), Present(P("$ref")))),
        # whitespace is free-form around tokens
        ('  userName   eq\t"x"  ', eq("userName", "x")),
        ('(userName eq"x")', eq("userName", "x")),
    ],
)
def test_attribute_expressions(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("true", True),
        ("FALSE", False),
        ("True", True),
        ("null", None),
        ("NULL", None),
        ("0", 0),
        ("-12", -12),
        ("3.25", 3.25),
        ("-1.5e3", -1500.0),
        ("2E-2", 0.02),
        (r'"a\"b"', 'a"b'),
        (r'"back\\slash"', "back\\slash"),
        (r'"caf\u00e9"', "café"),
        (r'"\ud83d\ude00"', "\U0001f600"),
        (r'"tab\tnew\nline\/"', "tab\tnew\nline/"),
        ('"unicode é raw"', "unicode é raw"),
        ('"(paren) [bracket] and or not"', "(paren) [bracket] and or not"),
        ('""', ""),
    ],
)
def test_comparison_values_are_json_literals(literal, value):
    parsed = parse_filter(f"x eq {literal}")
    assert parsed == Compare(P("x"), "eq", value)
    assert type(parsed.value) is type(value)  # type: ignore[union-attr]


A, B, C, D = (eq(n, 1) for n in "abcd")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a eq 1 and b eq 1", And(A, B)),
        ("a eq 1 or b eq 1", Or(A, B)),
        ("a eq 1 AND b eq 1 Or c eq 1", Or(And(A, B), C)),
        ("a eq 1 or b eq 1 and c eq 1", Or(A, And(B, C))),
        ("a eq 1 and b eq 1 or c eq 1 and d eq 1", Or(And(A, B), And(C, D))),
        ("(a eq 1 or b eq 1) and c eq 1", And(Or(A, B), C)),
        ("a eq 1 and (b eq 1 or c eq 1)", And(A, Or(B, C))),
        ("not (a eq 1)", Not(A)),
        ("NOT(a eq 1)", Not(A)),
        ("not (a eq 1) and b eq 1", And(Not(A), B)),
        ("not (a eq 1 or b eq 1)", Not(Or(A, B))),
        ("not (not (a eq 1))", Not(Not(A))),
        ("((((a eq 1))))", A),
        ("a eq 1 and b eq 1 and c eq 1", And(A, And(B, C))),
        ("not pr", Present(P("not"))),  # `not` not followed by '(' is an attribute name
    ],
)
def test_logical_precedence_and_grouping(text, expected):
    assert parse_filter(text) == expected


def test_value_paths_hold_a_relative_filter():
    parsed = parse_filter('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]')
    assert parsed == And(
        eq("userType", "Employee"),
        ValuePath(P("emails"), And(eq("type", "work"), Compare(P("value"), "co", "@example.com"))),
    )
    parsed = parse_filter('emails[not (type eq "work") or primary eq true]')
    assert parsed == ValuePath(P("emails"), Or(Not(eq("type", "work")), eq("primary", True)))


def test_long_and_chains_become_balanced_trees():
    parsed = parse_filter(" and ".join(["a eq 1"] * 512))

    def depth(node: object) -> int:
        return 1 + max(depth(node.left), depth(node.right)) if isinstance(node, And) else 1

    assert depth(parsed) == 10


def test_nesting_up_to_the_limit_parses_and_beyond_it_is_refused():
    assert parse_filter("(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH) == Present(P("a"))
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter("(" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter("not (" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter("(" * 5000)


def test_overlong_filters_are_refused():
    parse_filter('a eq "' + "x" * (MAX_LENGTH - 8) + '"')
    with pytest.raises(InvalidFilter, match="longer than"):
        parse_filter('a eq "' + "x" * MAX_LENGTH + '"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty filter"),
        ("   ", "empty filter"),
        ("userName", "expected an operator .* at end of input"),
        ('userName "x"', "expected an operator .* column 10"),
        ('userName xx "x"', "expected an operator .* column 10, found 'xx'"),
        ("userName eq", "expected a value .* at end of input"),
        ("userName eq bjensen", "expected a value .* column 13, found 'bjensen'"),
        ("userName eq 'x'", "expected a value"),
        ('userName eq "x', "unterminated string starting at column 13"),
        ('userName eq "x\\"', "unterminated string"),
        ('userName eq "\\x"', "invalid string at column 13"),
        ('userName eq "\\u12"', "invalid string at column 13"),
        ('userName eq "a\tb"', "invalid string"),  # raw control character
        ('userName eq "\\ud800"', "unpaired surrogate"),
        ('userName eq "\\u0000"', "NUL"),
        ("a eq 01", "expected a value"),
        ("a eq 1.", "expected a value"),
        ("a eq 1e999", "out of range"),
        ("a eq -", "expected a value"),
        ('userName eq "x" and', "expected an attribute path.* at end of input"),
        ('userName eq "x" or or b pr', "expected an attribute path.* column 20, found 'or'"),
        ('userName eq "x" userName eq "y"', "expected 'and', 'or' or the end .* column 17"),
        ('and userName eq "x"', "expected an attribute path.* column 1, found 'and'"),
        ('(userName eq "x"', "expected '\\)' closing the '\\(' at column 1"),
        ('userName eq "x")', "expected 'and', 'or' or the end .* column 16, found '\\)'"),
        ("()", "expected an attribute path.* column 2"),
        ("not userName pr", "expected an operator .* column 5, found 'userName'"),
        ("not ()", "expected an attribute path"),
        ('emails[type eq "work"', "expected '\\]' closing the '\\[' at column 7"),
        ('emails type eq "work"]', "expected an operator"),
        ('emails[type eq "work"]]', "expected 'and', 'or' or the end"),
        ("emails[]", "expected an attribute path.* column 8, found '\\]'"),
        ('emails[emails[type eq "work"]]', "nested value filter"),
        ('emails[emails.type eq "work"]', "bare sub-attribute name"),
        (f'emails[{CORE}:type eq "work"]', "bare sub-attribute name"),
        ('name.givenName[value eq "x"]', "follows an attribute, not a sub-attribute"),
        ('emails[type eq "work"].value eq "x"', "expected 'and', 'or' or the end"),
        ('name.given.name eq "x"', "invalid attribute path at column 1"),
        ('1abc eq "x"', "invalid attribute path"),
        ('user@name eq "x"', "invalid attribute path"),
        ('.userName eq "x"', "invalid attribute path"),
        ('userName. eq "x"', "invalid attribute path"),
        ('foo:userName eq "x"', "invalid schema URN"),
        (':userName eq "x"', "invalid schema URN"),
        ('urn:x: eq "x"', "invalid attribute path"),
        ("userName pr pr", "expected 'and', 'or' or the end"),
        ('userName eq ["x"]', "expected a value"),
        ("[", "expected an attribute path"),
        (")", "expected an attribute path"),
    ],
)
def test_malformed_filters_raise_invalid_filter_naming_the_place(text, message):
    with pytest.raises(InvalidFilter, match=message) as info:
        parse_filter(text)
    assert info.value.scim_type == "invalidFilter"


@pytest.mark.parametrize("value", [None, 5, b"userName pr"])
def test_a_non_string_filter_is_invalid(value):
    with pytest.raises(InvalidFilter):
        parse_filter(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", PatchPath(None, "userName")),
        ("name.givenName", PatchPath(None, "name", None, "givenName")),
        ("emails.value", PatchPath(None, "emails", None, "value")),
        ('emails[type eq "work"].value', PatchPath(None, "emails", eq("type", "work"), "value")),
        ('emails[type eq "work"]', PatchPath(None, "emails", eq("type", "work"))),
        ("emails[primary eq true].value", PatchPath(None, "emails", eq("primary", True), "value")),
        ('members[value eq "2819c223"]', PatchPath(None, "members", eq("value", "2819c223"))),
        ('members[value eq "a:b].c"]', PatchPath(None, "members", eq("value", "a:b].c"))),
        (
            'addresses[type eq "work" and postalCode sw "9"].locality',
            PatchPath(
                None,
                "addresses",
                And(eq("type", "work"), Compare(P("postalCode"), "sw", "9")),
                "locality",
            ),
        ),
        (f"{ENT}:employeeNumber", PatchPath(ENT, "employeeNumber")),
        (f"{ENT}:manager.value", PatchPath(ENT, "manager", None, "value")),
        (
            "urn:ietf:params:scim:schemas:core:2.0:Group:members",
            PatchPath("urn:ietf:params:scim:schemas:core:2.0:Group", "members"),
        ),
        (f"{CORE}:name.familyName", PatchPath(CORE, "name", None, "familyName")),
        (f'{CORE}:emails[type eq "work"].value', PatchPath(CORE, "emails", eq("type", "work"), "value")),
        (" userName ", PatchPath(None, "userName")),
        ("$ref", PatchPath(None, "$ref")),
    ],
)
def test_patch_paths(text, expected):
    assert parse_path(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "user name",
        "name.givenName.x",
        "name.",
        ".name",
        "1name",
        "emails[",
        'emails[type eq "work"',
        'emails[type eq "work"]value',
        'emails[type eq "work"] .value',
        'emails[type eq "work"].',
        'emails[type eq "work"].value.x',
        'emails[type eq "work"].value extra',
        'emails[type eq "work"][value eq "x"]',
        "emails[]",
        "emails[type eq]",
        'emails[emails[type eq "work"]]',
        'name.givenName[value eq "x"]',
        'emails]type eq "work"[',
        'emails"x"',
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "foo:userName",
        ":userName",
        'userName eq "x"',
        "(userName)",
    ],
)
def test_malformed_patch_paths_raise_invalid_path(text):
    with pytest.raises(InvalidPath) as info:
        parse_path(text)
    assert info.value.scim_type == "invalidPath"


def test_patch_path_length_is_bounded():
    with pytest.raises(InvalidPath, match="longer than"):
        parse_path("a" * (MAX_LENGTH + 1))
