"""The suite's own machinery: the clean-page watch catches each kind of problem, the Chromium
lookup skips or fails as documented, and the daemon fixture serves pages a browser loads."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from connectors.testing.server import ServerThread
from tests.browser import chromium
from tests.browser.screens import shot
from tests.browser.stack import Stack
from tests.browser.watch import PageWatch

FAVICON_404 = "Failed to load resource: the server responded with a status of 404 (Not Found)"
PAGES = {
    "/clean": "<h1>fine</h1>",
    "/console-error": "<script>console.error('boom')</script>",
    "/console-warning": "<script>console.warn('careful')</script>",
    "/throws": "<script>throw new Error('kaboom')</script>",
    "/missing-image": '<img src="/nope.png" alt="">',
    "/unreachable-script": '<script src="http://127.0.0.1:9/gone.js"></script>',
}


def _html(body: str) -> str:
    head = "<meta charset=utf-8><title>t</title>"
    return f"<!doctype html><html lang=en><head>{head}</head><body>{body}</body></html>"


def _app() -> Starlette:
    routes = [Route(path, lambda _r, b=body: HTMLResponse(_html(b))) for path, body in PAGES.items()]
    routes.append(Route("/forbidden", lambda _r: HTMLResponse(_html("<h1>no</h1>"), status_code=403)))
    routes.append(Route("/favicon.ico", lambda _r: Response(status_code=204)))
    return Starlette(routes=routes)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    srv = ServerThread(_app()).start()
    yield srv.url
    srv.stop()


@pytest.fixture
def bare_page(context: Any) -> Iterator[tuple[Any, PageWatch]]:
    """A page with its own watch, which the test inspects (and which fails nothing itself)."""
    own = PageWatch()
    p = context.new_page()
    own.attach(p)
    yield p, own
    p.close()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/console-error", "console error: boom"),
        ("/console-warning", "console warning: careful"),
        ("/throws", "uncaught Error: kaboom"),
        ("/missing-image", "HTTP 404: GET"),
        ("/unreachable-script", "request failed: GET http://127.0.0.1:9/gone.js"),
        ("/forbidden", "HTTP 403: GET"),
    ],
)
def test_the_watch_reports_each_kind_of_problem(bare_page: Any, site: str, path: str, expected: str) -> None:
    p, own = bare_page
    p.goto(site + path)
    p.wait_for_load_state("load")
    found = own.problems()
    assert any(expected in line for line in found), found
    with pytest.raises(pytest.fail.Exception, match="the browser saw problems"):
        own.check()


def test_a_clean_page_leaves_nothing_to_report(bare_page: Any, site: str) -> None:
    p, own = bare_page
    p.goto(site + "/clean")
    assert p.inner_text("h1") == "fine"
    assert own.problems() == []
    own.check()


def test_an_expected_error_response_is_allowed_once(bare_page: Any, site: str) -> None:
    p, own = bare_page
    own.expect(403, "/forbidden")
    p.goto(site + "/forbidden")
    assert own.problems() == []  # neither the response nor Chromium's console line for it
    p.goto(site + "/forbidden")
    assert [x for x in own.problems() if x.startswith("HTTP 403")], own.problems()


def test_a_missing_favicon_is_tolerated_only_from_a_foreign_origin(bare_page: Any, site: str) -> None:
    p, own = bare_page
    p.goto(site + "/clean")  # the test site serves no real icon: answer 404 for it from now on
    own.console.append(("error", FAVICON_404, site + "/favicon.ico"))
    assert own.problems() == [f"console error: {FAVICON_404} ({site}/favicon.ico)"]
    own.foreign_origins.add(site)
    assert own.problems() == []


def test_without_chromium_the_suite_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYNCD_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"no Chromium at SYNCD_CHROMIUM=.*apt-get install chromium"
    ):
        chromium.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI=true"):
        chromium.require_chromium()


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_daemon_serves_a_page_the_browser_loads_cleanly(
    page: Any, watch: PageWatch, stack: Stack, tmp_path: Path
) -> None:
    # Chromium asks for /favicon.ico when a document declares no icon (a JSON one cannot);
    # the console's own pages declare theirs and get no such allowance
    watch.expect(404, "/favicon.ico")
    page.goto(stack.console_url + "/v1/openapi.json")
    assert '"openapi"' in page.inner_text("body")
    assert _png_size(shot(page, "openapi", tmp_path)) == (1280, 800)
