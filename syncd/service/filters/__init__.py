"""SCIM filters and PATCH paths: parse (RFC 7644 §3.4.2.2, §3.5.2), evaluate, translate to SQL.

flt = parse_filter('emails[type eq "work" and value co "@example.com"]')
session.exec(select(User).where(user_condition(flt)))
path = parse_path('emails[type eq "work"].value')
[e for e in emails if matches(path.filter, e, USER.core.attr("emails"))]
"""

from syncd.service.filters.ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)
from syncd.service.filters.evaluate import matches, validate
from syncd.service.filters.parser import MAX_DEPTH, MAX_LENGTH, parse_filter, parse_path
from syncd.service.filters.sql import escape_like, team_condition, user_condition

__all__ = [
    "COMPARE_OPS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "AttrPath",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "Value",
    "ValuePath",
    "escape_like",
    "matches",
    "parse_filter",
    "parse_path",
    "team_condition",
    "user_condition",
    "validate",
]
