"""Fixtures of the browser suite: Chromium driven by Playwright, a clean-page watch on every
page, and the daemon under test.

Package-scoped fixtures end with this package, so no browser, Playwright event loop or daemon
outlives the browser tests into the rest of the suite.

- `browser` (package): Chromium from `chromium.require_chromium()`, launched headless once.
- `watch`, `page` (per test): a fresh context at 1280x800 (UTC, en-US); every page it opens
  is watched (`watch.PageWatch`) and the test fails at teardown when any logged an error or
  warning, threw, or loaded something that failed. `watch.expect(403, "/path")` allows one
  expected error response.
- `stack` (package): the daemon with its fake IdP and seeded hostile names (`stack.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.browser.chromium import require_chromium
from tests.browser.screens import VIEWPORT
from tests.browser.stack import Stack, start_stack
from tests.browser.watch import PageWatch

#: Upper bound for one browser action or navigation on a loaded 2-core machine (not a timing
#: assertion: a slow page passes, a hung one fails with a clear message).
ACTION_TIMEOUT_MS = 60_000


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(path), headless=True)
        try:
            yield b
        finally:
            b.close()


#: origins of test fakes whose pages may miss a favicon (the stack's IdP adds its own)
FOREIGN_ORIGINS: set[str] = set()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch(foreign_origins=FOREIGN_ORIGINS)


@pytest.fixture
def context(browser: Any, watch: PageWatch) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC", color_scheme="light")
    ctx.set_default_timeout(ACTION_TIMEOUT_MS)
    ctx.on("page", watch.attach)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, watch: PageWatch) -> Iterator[Any]:
    p = context.new_page()  # attached by the context's "page" handler
    yield p
    try:
        watch.check()  # before closing: closing aborts what is in flight (a run's live progress)
    finally:
        p.close()


@pytest.fixture(scope="package")
def stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Depends on `browser` so that without Chromium the suite skips before starting a daemon."""
    with ExitStack() as es:
        st = start_stack(es, tmp_path_factory.mktemp("console"))
        FOREIGN_ORIGINS.add(st.oidc.issuer)
        yield st
