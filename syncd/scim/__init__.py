"""The inbound SCIM 2.0 endpoint (RFC 7643/7644): protocol over the service layer."""

from syncd.scim.app import MAX_BODY_BYTES, create_app

__all__ = ["MAX_BODY_BYTES", "create_app"]
