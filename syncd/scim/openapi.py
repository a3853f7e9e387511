"""OpenAPI fragments for bodies that the routes read themselves (so that auth comes first)."""

from __future__ import annotations

from typing import Any


def json_body(description: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON object body in both accepted media types."""
    media: dict[str, Any] = {"schema": {"type": "object", "additionalProperties": True}}
    if example is not None:
        media["example"] = example
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/scim+json": media, "application/json": media},
        }
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/scim+json": {}}}
    for code, text in (
        (400, "SCIM Error: invalidFilter, invalidValue, invalidPath, invalidSyntax, mutability, noTarget"),
        (401, "missing, unknown, revoked or expired bearer token"),
        (404, "no such resource in the token's directory"),
    )
}
