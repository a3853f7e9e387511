"""What a page must never do: log an error or warning, throw, or load something that fails.

`PageWatch.attach(page)` records, for every page of a browser context:
- console messages of type error or warning, and uncaught exceptions (`pageerror`);
- requests that failed (connection refused, aborted, blocked) and responses with status >= 400,
  for documents and subresources alike.

Chromium asks every origin for /favicon.ico unless the document declares an icon; a 404 for it
is tolerated only from `foreign_origins` (test fakes such as the IdP's login form), never from
the console.

`problems()` lists what was recorded, minus what the test said it expects (`expect(403, "/x")`:
one such response, and one matching "Failed to load resource" console line of Chromium's);
`check()` fails the test when anything is left. The `page` fixture calls `check()` at teardown,
so a test needs no assertion of its own to prove a page is clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

#: Chromium's console line for a response >= 400 (documents and subresources alike)
_LOAD_FAILED = "Failed to load resource: the server responded with a status of {status}"


@dataclass
class _Expected:
    status: int
    path: str
    seen: bool = False

    def matches(self, status: int, url: str) -> bool:
        return status == self.status and urlsplit(url).path == self.path


@dataclass
class PageWatch:
    """Console errors/warnings, page errors and failed requests seen by one browser context."""

    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, url)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _expected: list[_Expected] = field(default_factory=list)
    foreign_origins: set[str] = field(default_factory=set)

    def attach(self, page: Any) -> None:
        """Record `page`'s console, errors and network failures from now on."""
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught {type(exc).__name__}: {exc}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def expect(self, status: int, path: str) -> None:
        """Allow one response of `status` for `path` (e.g. the 403 page a non-admin must get)."""
        self._expected.append(_Expected(status, path))

    def _on_console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append((msg.type, msg.text, (msg.location or {}).get("url", "")))

    def _on_request_failed(self, request: Any) -> None:
        if request.failure == "net::ERR_ABORTED" and request.resource_type != "document":
            return  # a subresource the browser dropped because the page navigated away (a form submit)
        self.failed.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Any) -> None:
        if response.status < 400:
            return
        for exp in self._expected:
            if not exp.seen and exp.matches(response.status, response.url):
                exp.seen = True
                return
        self.failed.append(
            f"HTTP {response.status}: {response.request.method} {response.url} "
            f"({response.request.resource_type})"
        )

    def problems(self) -> list[str]:
        """Everything recorded that the test did not expect. Console lines and responses
        arrive in no fixed order, so expected responses' console lines are matched here (each
        expectation allows one; Chromium reports a favicon's status by console line only)."""
        allowed = [(e.status, e.path) for e in self._expected]
        console = []
        for kind, text, url in self.console:
            parts = urlsplit(url)
            if parts.path == "/favicon.ico" and f"{parts.scheme}://{parts.netloc}" in self.foreign_origins:
                continue
            match = next(
                (
                    a
                    for a in allowed
                    if text.startswith(_LOAD_FAILED.format(status=a[0])) and urlsplit(url).path == a[1]
                ),
                None,
            )
            if match is not None:
                allowed.remove(match)
            else:
                console.append(f"console {kind}: {text} ({url})")
        return [*self.errors, *console, *self.failed]

    def clear(self) -> None:
        """Forget what was recorded so far (for tests of this class)."""
        self.console.clear()
        self.errors.clear()
        self.failed.clear()

    def check(self) -> None:
        """Fail the test when the pages logged errors or warnings, threw, or loaded something
        that failed."""
        found = self.problems()
        if found:
            pytest.fail("the browser saw problems:\n  " + "\n  ".join(found), pytrace=False)
