"""Discovery documents (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.

ServiceProviderConfig states only what this server really does: PATCH yes, bulk no, filter
yes (at most MAX_RESULTS per page; a larger `count` is clamped, not refused), changePassword
no (passwords are accepted and dropped), sort no (results come in creation order, stable
across pages), ETags yes, authentication by OAuth-style bearer token.
"""

from __future__ import annotations

from typing import Any

from syncd.service.common import MAX_RESULTS
from syncd.service.schema import RESOURCE_TYPES, SCHEMAS, ResourceType, Schema

SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token made with `syncd token create --directory NAME`.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_type(rt: ResourceType, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.core.description,
        "schema": rt.core.id,
    }
    if rt.extensions:
        out["schemaExtensions"] = [{"schema": s.id, "required": False} for s in rt.extensions]
    out["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{rt.name}"}
    return out


def resource_types(base: str) -> list[dict[str, Any]]:
    return [resource_type(rt, base) for rt in RESOURCE_TYPES.values()]


def find_resource_type(name: str) -> ResourceType | None:
    low = name.lower()
    return next((rt for rt in RESOURCE_TYPES.values() if rt.name.lower() == low), None)


def schema(s: Schema, base: str) -> dict[str, Any]:
    out = s.to_scim()
    out["meta"] = {**out.get("meta", {}), "location": f"{base}/Schemas/{s.id}"}
    return out


def schemas(base: str) -> list[dict[str, Any]]:
    return [schema(s, base) for s in SCHEMAS.values()]


def find_schema(schema_id: str) -> Schema | None:
    low = schema_id.lower()
    return next((s for s in SCHEMAS.values() if s.id.lower() == low), None)
