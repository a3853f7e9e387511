"""The response class of every SCIM answer: JSON as `application/scim+json`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

MEDIA_TYPE = "application/scim+json"


class ScimResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
