"""SCIM resource schemas (RFC 7643 §4, §8.7) for User, enterprise User and Group.

These definitions drive input normalisation, PATCH path resolution, filters and projection,
and are what `/Schemas` serves. Attribute names are matched case-insensitively; the canonical
spelling from here is what gets stored and returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.service.limits import BINARY_MAX, NAME_MAX, TEXT_MAX, TYPE_MAX

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"  # string | boolean | decimal | integer | dateTime | reference | complex
    multi: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly | readWrite | immutable | writeOnly
    returned: str = "default"  # always | never | default | request
    uniqueness: str = "none"
    required: bool = False
    sub: tuple[Attr, ...] = ()
    canonical: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""
    #: the longest string value accepted, in characters (see `limits`); not part of SCIM
    max_length: int = TEXT_MAX
    #: a string value may hold tab, LF and CR (`addresses.formatted`)
    multiline: bool = False

    def child(self, name: str) -> Attr | None:
        low = name.lower()
        return next((a for a in self.sub if a.name.lower() == low), None)

    def to_scim(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.sub:
            out["subAttributes"] = [a.to_scim() for a in self.sub]
        if self.canonical:
            out["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        return out


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attrs: tuple[Attr, ...]
    _index: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({a.name.lower(): a for a in self.attrs})

    def attr(self, name: str) -> Attr | None:
        return self._index.get(name.lower())

    def to_scim(self) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attrs],
            "meta": {"resourceType": "Schema", "location": f"/Schemas/{self.id}"},
        }


@dataclass(frozen=True)
class ResourceType:
    """A resource type: its core schema and extensions (URN → schema)."""

    name: str
    endpoint: str
    core: Schema
    extensions: tuple[Schema, ...] = ()

    def extension(self, urn: str) -> Schema | None:
        low = urn.lower()
        return next((s for s in self.extensions if s.id.lower() == low), None)

    @property
    def schema_ids(self) -> list[str]:
        return [self.core.id, *(s.id for s in self.extensions)]


def _s(name: str, **kw: Any) -> Attr:
    return Attr(name, "string", **kw)


_TYPE = lambda *c: _s("type", canonical=c, max_length=TYPE_MAX)  # noqa: E731
_PRIMARY = Attr("primary", "boolean")
_DISPLAY = _s("display")

ID = _s("id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server")
EXTERNAL_ID = _s("externalId", case_exact=True, max_length=NAME_MAX)


def _multi(name: str, *types: str, value_type: str = "string", value_max: int = NAME_MAX) -> Attr:
    value = Attr("value", value_type, max_length=value_max)
    return Attr(name, "complex", multi=True, sub=(value, _DISPLAY, _TYPE(*types), _PRIMARY))


USER_SCHEMA = Schema(
    CORE_USER,
    "User",
    "User Account",
    (
        ID,
        EXTERNAL_ID,
        _s("userName", required=True, uniqueness="server", max_length=NAME_MAX),
        Attr(
            "name",
            "complex",
            sub=tuple(
                _s(n, max_length=NAME_MAX if n in ("givenName", "familyName") else TEXT_MAX)
                for n in (
                    "formatted",
                    "familyName",
                    "givenName",
                    "middleName",
                    "honorificPrefix",
                    "honorificSuffix",
                )
            ),
        ),
        _s("displayName", max_length=NAME_MAX),
        _s("nickName"),
        Attr("profileUrl", "reference", reference_types=("external",)),
        _s("title"),
        _s("userType"),
        _s("preferredLanguage"),
        _s("locale"),
        _s("timezone"),
        Attr("active", "boolean"),
        _s("password", mutability="writeOnly", returned="never"),
        _multi("emails", "work", "home", "other"),
        _multi("phoneNumbers", "work", "home", "mobile", "fax", "pager", "other"),
        _multi("ims", "aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        _multi("photos", "photo", "thumbnail", value_type="reference", value_max=TEXT_MAX),
        Attr(
            "addresses",
            "complex",
            multi=True,
            sub=(
                _s("formatted", multiline=True),
                _s("streetAddress"),
                _s("locality"),
                _s("region"),
                _s("postalCode"),
                _s("country"),
                _TYPE("work", "home", "other"),
                _PRIMARY,
            ),
        ),
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=(
                _s("value", mutability="readOnly"),
                Attr("$ref", "reference", mutability="readOnly", reference_types=("Group",)),
                _s("display", mutability="readOnly"),
                _s("type", mutability="readOnly", canonical=("direct", "indirect")),
            ),
        ),
        _multi("entitlements"),
        _multi("roles"),
        _multi("x509Certificates", value_type="binary", value_max=BINARY_MAX),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise User",
    (
        _s("employeeNumber"),
        _s("costCenter"),
        _s("organization"),
        _s("division"),
        _s("department"),
        Attr(
            "manager",
            "complex",
            sub=(
                _s("value"),
                Attr("$ref", "reference", reference_types=("User",)),
                _s("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

GROUP_SCHEMA = Schema(
    CORE_GROUP,
    "Group",
    "Group",
    (
        ID,
        EXTERNAL_ID,
        _s("displayName", required=True, max_length=NAME_MAX),
        Attr(
            "members",
            "complex",
            multi=True,
            sub=(
                _s("value", mutability="immutable", case_exact=True),
                Attr("$ref", "reference", mutability="immutable", reference_types=("User", "Group")),
                _s("display", mutability="immutable", max_length=NAME_MAX),  # memberships.display
                _s("type", mutability="immutable", canonical=("User", "Group")),
            ),
        ),
    ),
)

USER = ResourceType("User", "/Users", USER_SCHEMA, (ENTERPRISE_SCHEMA,))
GROUP = ResourceType("Group", "/Groups", GROUP_SCHEMA)
RESOURCE_TYPES = {"User": USER, "Group": GROUP}
SCHEMAS = {s.id: s for s in (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA)}
