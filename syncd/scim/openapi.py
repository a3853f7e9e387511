"""The OpenAPI document of `/scim/v2`, made to say what the server really answers.

FastAPI's generated document is finished by `finish` (installed by `install`):
- every status an operation can answer is listed, and no other: FastAPI's 422 is dropped
  (validation errors are SCIM 400s); 401 where a token is needed, 404 where the path names a
  resource, 409 where a write can break a uniqueness rule, 412 where If-Match applies, 304 for
  If-None-Match, 413/415 for bodies, 503 when the store is unavailable;
- every body is `application/scim+json` with a schema: SCIM Error, ListResponse, User, Group,
  and the request messages (User, Group, PatchOp, SearchRequest);
- the bearer token is a security scheme, not a header parameter.

Request schemas describe what a well-formed message looks like (a fuzzer draws from them);
the server still answers 400 for anything else it is sent.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

MEDIA = "application/scim+json"
_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_OBJ: dict[str, Any] = {"type": "object"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "ScimError": {
        "type": "object",
        "required": ["schemas", "status", "detail"],
        "properties": {"schemas": _STRS, "status": _STR, "scimType": _STR, "detail": _STR},
    },
    "ListResponse": {
        "type": "object",
        "required": ["schemas", "totalResults", "startIndex", "itemsPerPage", "Resources"],
        "properties": {
            "schemas": _STRS,
            "totalResults": {"type": "integer", "minimum": 0},
            "startIndex": {"type": "integer", "minimum": 1},
            "itemsPerPage": {"type": "integer", "minimum": 0},
            "Resources": {"type": "array", "items": {"type": "object", "required": ["schemas"]}},
        },
    },
    "User": {
        "type": "object",
        "required": ["schemas", "id"],
        "properties": {
            "schemas": _STRS,
            "id": _STR,
            "externalId": _STR,
            "userName": _STR,
            "displayName": _STR,
            "active": {"type": "boolean"},
            "name": _OBJ,
            "emails": {"type": "array", "items": _OBJ},
            "groups": {"type": "array", "items": {"type": "object", "required": ["value"]}},
            "meta": _OBJ,
        },
    },
    "Group": {
        "type": "object",
        "required": ["schemas", "id"],
        "properties": {
            "schemas": _STRS,
            "id": _STR,
            "externalId": _STR,
            "displayName": _STR,
            "members": {"type": "array", "items": {"type": "object", "required": ["value"]}},
            "meta": _OBJ,
        },
    },
    "UserRequest": {
        "type": "object",
        "required": ["userName"],
        "properties": {
            "schemas": _STRS,
            "userName": _STR,
            "externalId": _STR,
            "displayName": _STR,
            "title": _STR,
            "active": {"type": "boolean"},
            "name": {"type": "object", "properties": {"givenName": _STR, "familyName": _STR}},
            "emails": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"value": _STR, "type": _STR, "primary": {"type": "boolean"}},
                },
            },
        },
    },
    "GroupRequest": {
        "type": "object",
        "required": ["displayName"],
        "properties": {
            "schemas": _STRS,
            "displayName": _STR,
            "externalId": _STR,
            "members": {"type": "array", "items": {"type": "object", "properties": {"value": _STR}}},
        },
    },
    "PatchOp": {
        "type": "object",
        "required": ["Operations"],
        "properties": {
            "schemas": _STRS,
            "Operations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["op"],
                    "properties": {
                        "op": {"type": "string", "enum": ["add", "remove", "replace"]},
                        "path": _STR,
                        "value": {},
                    },
                },
            },
        },
    },
    "SearchRequest": {
        "type": "object",
        "properties": {
            "schemas": _STRS,
            "filter": _STR,
            "startIndex": {"type": "integer"},
            "count": {"type": "integer"},
            "attributes": _STRS,
            "excludedAttributes": _STRS,
        },
    },
}

_REASONS = {
    304: "not modified: the resource still has the If-None-Match version",
    400: "SCIM Error: invalidFilter, invalidValue, invalidPath, invalidSyntax, mutability, noTarget, tooMany",
    401: "missing, unknown, revoked or expired bearer token",
    404: "no such resource (in the token's directory)",
    409: "SCIM Error uniqueness: the userName, displayName or externalId is taken",
    412: "the If-Match version is not the resource's current one",
    413: "the request body is over the server's limit",
    415: "the body is not application/scim+json or application/json",
    503: "the store is busy or unreachable; retry (Retry-After)",
}


def json_body(
    description: str, example: dict[str, Any] | None = None, schema: str | None = None
) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON object body in both accepted media types;
    `schema`: the name of its request schema in SCHEMAS."""
    shape: dict[str, Any] = {"$ref": f"#/components/schemas/{schema}"} if schema else {"type": "object"}
    media: dict[str, Any] = {"schema": shape}
    if example is not None:
        media["example"] = example
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {MEDIA: media, "application/json": copy.deepcopy(media)},
        }
    }


def _ref(name: str) -> dict[str, Any]:
    return {MEDIA: {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _success_schema(path: str, method: str, tag: str) -> str | None:
    if path.endswith(".search") or (method == "get" and path.endswith(("/Users", "/Groups"))):
        return "ListResponse"
    if tag == "Users":
        return "User"
    if tag == "Groups":
        return "Group"
    return None


def _statuses(path: str, method: str, op: dict[str, Any]) -> set[int]:
    """The error and special statuses `method path` can answer (see the module docstring)."""
    token = any(p.get("name", "").lower() == "authorization" for p in op.get("parameters", []))
    named = path.endswith("}")
    out: set[int] = set()
    if token:
        out |= {400, 401, 503}
    if named:
        out.add(404)
    if "requestBody" in op:
        out |= {400, 413, 415}
    if token and named and method in ("put", "patch", "delete"):
        out.add(412)
    if token and (
        (method == "post" and not path.endswith(".search")) or method in ("put", "patch", "delete")
    ):
        out.add(409)  # a uniqueness rule, or a concurrent writer that won (IntegrityError)
    if token and named and method == "get":
        out.add(304)
    return out


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (FastAPI's document) made true to the server: see the module docstring."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(copy.deepcopy(SCHEMAS))
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "`syncd token create --directory NAME`"}
    }
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            statuses = _statuses(path, method, op)
            params = op.get("parameters", [])
            token = any(p.get("name", "").lower() == "authorization" for p in params)
            op["parameters"] = [p for p in params if p.get("name", "").lower() != "authorization"]
            if not op["parameters"]:
                del op["parameters"]
            op["security"] = [{"bearer": []}] if token else []
            responses = {k: v for k, v in op.get("responses", {}).items() if k.isdigit() and int(k) < 300}
            tag = (op.get("tags") or [""])[0]
            success = _success_schema(path, method, tag)
            if method == "patch" and tag == "Groups":  # 204, or 200 with attributes/excludedAttributes
                responses["200"] = {"description": "the projected group (attributes/excludedAttributes)"}
            for code, resp in responses.items():
                if code == "204":
                    resp.pop("content", None)
                elif success is not None:
                    resp["content"] = _ref(success)
                else:
                    resp["content"] = {MEDIA: {"schema": {"type": "object"}}}
            for code in sorted(statuses):
                entry: dict[str, Any] = {"description": _REASONS[code]}
                if code != 304:
                    entry["content"] = _ref("ScimError")
                responses[str(code)] = entry
            op["responses"] = dict(sorted(responses.items()))
    return doc


def install(app: FastAPI) -> None:
    """Serve `finish`ed documents at the app's openapi_url (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                openapi_version=app.openapi_version,
            )
            app.openapi_schema = finish(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
