"""The one set of limits on the text the service accepts, the same on SQLite and PostgreSQL.

Every string the service takes in (each attribute value of a User or Group at any depth,
`externalId`, resource ids, member references, filters and PATCH paths) is checked here, in
the service, before any store sees it: a client meets these limits, never a store's own (which
differ: PostgreSQL refuses U+0000 and values over a column's length, SQLite neither).

Characters. Refused: C0 controls (U+0000-U+001F), DEL (U+007F), C1 controls (U+0080-U+009F)
and lone surrogates (U+D800-U+DFFF). Multi-line attributes (`addresses.formatted`, RFC 7643
§4.1.2 "MAY contain newlines") may hold tab, LF and CR. (PostgreSQL cannot store U+0000 at
all; one in a JSON attribute made every JSON filter of its directory fail. The other controls
reach terminals and logs as escape sequences.)

Lengths are counted in characters (code points). A case-insensitive attribute is measured by
the longer of its value and its casefolded form ("ß" folds to "ss"), because the casefolded
form is stored too (the `*_key` columns) and must fit as well.

| value                                                         | at most         |
|---------------------------------------------------------------|-----------------|
| userName, Group displayName, externalId, User displayName,    | NAME_MAX (512)  |
| name.givenName / familyName, the `value` of emails,           |                 |
| phoneNumbers, ims, entitlements, roles                        |                 |
| `type` of a multi-valued attribute                            | TYPE_MAX (64)   |
| x509Certificates.value (base64 DER)                           | BINARY_MAX      |
| any other string                                              | TEXT_MAX (2048) |
| values of one multi-valued attribute                          | MAX_VALUES      |

Required names (userName, Group displayName) must also hold a character that is not
whitespace.
"""

from __future__ import annotations

import re

from syncd.service.errors import InvalidValue

NAME_MAX = 512  # the store's name, key and externalId columns hold 512 characters
TYPE_MAX = 64  # user_emails.type
TEXT_MAX = 2048
BINARY_MAX = 16_384
MAX_VALUES = 1000

#: characters never accepted (in multi-line values, tab, LF and CR are allowed)
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_char(value: str, *, multiline: bool = False) -> str | None:
    """The first refused character of `value` as `U+XXXX`, or None when there is none."""
    m = (_BAD_MULTILINE if multiline else _BAD).search(value)
    return None if m is None else f"U+{ord(m.group()):04X}"


def length(value: str, *, folded: bool) -> int:
    """The length a limit applies to: for a case-insensitive value, also its casefolded form's."""
    n = len(value)
    return max(n, len(value.casefold())) if folded else n


def check_text(
    value: str, *, where: str, max_length: int, multiline: bool = False, folded: bool = True
) -> str:
    """`value` unchanged, or InvalidValue naming `where` (the attribute) and the rule broken."""
    bad = bad_char(value, multiline=multiline)
    if bad is not None:
        allowed = " (and tab and newline)" if multiline else ""
        raise InvalidValue(
            f"{where} contains the control character {bad}; only printable text{allowed} is accepted"
        )
    n = length(value, folded=folded)
    if n > max_length:
        how = " counted after case folding" if n > len(value) else ""
        raise InvalidValue(f"{where} is {n} characters long{how}; at most {max_length} are allowed")
    return value


def check_count(n: int, *, where: str) -> None:
    if n > MAX_VALUES:
        raise InvalidValue(f"{where} has {n} values; at most {MAX_VALUES} are allowed")


def check_not_blank(value: str, *, where: str) -> None:
    if not value.strip():
        raise InvalidValue(f"{where} must not be blank (it has no character other than whitespace)")


def storable_id(value: str) -> bool:
    """Whether `value` can be the id (or externalId) of a stored row at all: lookups of any
    other value are answered "not found" without asking the store (PostgreSQL would refuse
    a NUL in a query parameter)."""
    return len(value) <= NAME_MAX and _BAD.search(value) is None
