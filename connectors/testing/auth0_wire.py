"""Auth0's wire format for the fake tenant: error bodies, answers, and the two paging schemes.

Used only by `connectors.testing.auth0`. Offset paging (`page`, `per_page` ≤ 100,
`include_totals`) refuses any page that reaches past the first 1,000 results
(`page * per_page + per_page > 1000`), whatever the list's size; checkpoint paging (`take` ≤ 100,
`from` = the previous answer's `next`, absent on the last page) has no cap.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.testing.auth0_index import after, decode_cursor

JSON = b"application/json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
USERS_CAP = (
    "You can only page through the first 1000 records. See "
    "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation"
)


def error_body(status: int, message: str | None = None, code: str | None = None) -> bytes:
    doc: dict[str, Any] = {
        "statusCode": status,
        "error": _TITLES.get(status, "Error"),
        "message": message or _TITLES.get(status, "Error"),
    }
    if code:
        doc["errorCode"] = code
    return orjson.dumps(doc)


class Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or []


class Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


def int_param(query: dict[str, str], name: str, default: int, top: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        raise Refused(
            Answer(
                400,
                error_body(
                    400,
                    f"Query validation error: 'Expected type integer but found type string' on "
                    f"property {name}",
                    "invalid_query_string",
                ),
            )
        ) from None
    if value > top or value < (0 if name == "page" else 1):
        raise Refused(
            Answer(
                400,
                error_body(
                    400,
                    f"Query validation error: 'Number is {'greater' if value > top else 'less'} "
                    f"than the allowed {'maximum' if value > top else 'minimum'}' on property "
                    f"{name}",
                    "invalid_query_string",
                ),
            )
        )
    return value


def page_window(query: dict[str, str], message: str | None = None) -> tuple[int, int]:
    page = int_param(query, "page", 0, 10**9)
    per_page = int_param(query, "per_page", 50, 100)
    if page * per_page + per_page > 1000:
        text = message or (
            f"Requesting page {page} exceeds the allowed maximum of 1000 records. "
            "To fetch results beyond 1000, use the checkpoint pagination method."
        )
        raise Refused(Answer(400, error_body(400, text, "invalid_paging")))
    return page, per_page


def offset(
    query: dict[str, str],
    key: str,
    items: list[dict[str, Any]],
    bodies: list[bytes] | None = None,
    message: str | None = None,
) -> Answer:
    page, per_page = page_window(query, message)
    start = page * per_page
    chunk = (
        bodies[start : start + per_page]
        if bodies is not None
        else [orjson.dumps(i) for i in items[start : start + per_page]]
    )
    total = len(bodies) if bodies is not None else len(items)
    arr = b"[" + b",".join(chunk) + b"]"
    if query.get("include_totals") == "true":
        head = orjson.dumps({"start": start, "limit": per_page, "length": len(chunk), "total": total})
        return Answer(200, head[:-1] + b',"' + key.encode() + b'":' + arr + b"}")
    return Answer(200, arr)


def checkpoint(query: dict[str, str], ids: list[str]) -> tuple[list[str], str | None]:
    take = int_param(query, "take", 50, 100)
    last = None
    if query.get("from"):
        try:
            last = decode_cursor(query["from"])
        except (ValueError, UnicodeDecodeError):
            raise Refused(
                Answer(400, error_body(400, "Invalid from parameter", "invalid_query_string"))
            ) from None
    return after(ids, last, take)


def keyed(key: str, bodies: list[bytes], nxt: str | None) -> Answer:
    out = b'{"' + key.encode() + b'":[' + b",".join(bodies) + b"]"
    if nxt is not None:
        out += b',"next":' + orjson.dumps(nxt)
    return Answer(200, out + b"}")


def invalid_token() -> bytes:
    return orjson.dumps(
        {
            "statusCode": 401,
            "error": "Unauthorized",
            "message": "Invalid token",
            "attributes": {"error": "Invalid token"},
        }
    )
