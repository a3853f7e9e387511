"""Screenshots of console pages at the suite's 1280x800 viewport.

By default they go to a temporary directory (`$SYNCD_SCREENSHOT_DIR`, else
`<tmp>/syncd-screenshots`), so a test run never dirties a checkout, CI's included. With
`SYNCD_SCREENSHOTS=1` they overwrite `docs/screenshots/`, the copies the README shows.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: every browser context of the suite, so every screenshot, has this viewport
VIEWPORT = {"width": 1280, "height": 800}


def screenshot_dir() -> Path:
    """Where `shot` writes, created on first use."""
    if os.environ.get("SYNCD_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
    else:
        out = Path(
            os.environ.get("SYNCD_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "syncd-screenshots"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def shot(page: Any, name: str, directory: Path | None = None) -> Path:
    """Save the viewport of `page` as `<name>.png` in `directory` (default `screenshot_dir()`);
    returns the file."""
    path = (directory or screenshot_dir()) / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
    return path
