"""Which Chromium the browser suite drives, and what happens when there is none.

Looked up in order: `$SYNCD_CHROMIUM`, `/usr/bin/chromium` (Debian's `chromium` package, which
`.ci/run` installs), then `chromium` / `chromium-browser` on PATH. Playwright launches it with
`executable_path`; its own browser downloads (`playwright install`) are never used.

Without a browser (or without the Playwright package) the suite skips locally with the command
that fixes it, and fails under `CI=true`, where it is required.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DEBIAN = Path("/usr/bin/chromium")
INSTALL_HINT = (
    "apt-get install chromium (Debian/Ubuntu; .ci/run does this when it runs as root), "
    "or point SYNCD_CHROMIUM at a Chromium or Chrome binary"
)


def find_chromium() -> Path | None:
    """The Chromium binary to drive, or None when none is installed."""
    explicit = os.environ.get("SYNCD_CHROMIUM")
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    if DEBIAN.is_file() and os.access(DEBIAN, os.X_OK):
        return DEBIAN
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def unavailable(reason: str) -> None:
    """Skip the browser suite locally; fail it under CI=true, where it is required."""
    message = f"{reason}: {INSTALL_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser suite is required under CI=true, but {message}", pytrace=False)
    pytest.skip(message)


def require_chromium() -> Path:
    """The Chromium binary, after checking Playwright is importable; else `unavailable`."""
    explicit = os.environ.get("SYNCD_CHROMIUM")
    path = find_chromium()
    if path is None:
        unavailable(f"no Chromium at SYNCD_CHROMIUM={explicit}" if explicit else "no Chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install -e '.[dev]')")
    assert path is not None
    return path
