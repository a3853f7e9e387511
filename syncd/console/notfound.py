"""The page a console path answers when the run, team, user or token it names does not exist."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from syncd.console.render import page


def not_found(
    request: Request, message: str, *, back: str = "/", back_label: str = "Back to the overview"
) -> Response:
    """404 with `message` (plain text, escaped) and a link back to the list it came from."""
    return page(
        request,
        "notfound.html",
        status_code=404,
        title="Not found",
        message=message,
        back=back,
        back_label=back_label,
    )
